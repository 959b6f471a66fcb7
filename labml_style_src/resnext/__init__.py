"""ResNeXt"""

PAGES = ["aggregated", "three_forms"]
