"""ResNeXt"""

PAGES = ["aggregated", "three_forms", "resnext_nets", "add_pitfall"]
