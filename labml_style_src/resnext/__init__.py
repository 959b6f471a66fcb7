"""ResNeXt"""

PAGES = []
