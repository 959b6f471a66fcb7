"""ResNeXt"""

PAGES = ["aggregated", "three_forms", "resnext_nets"]
