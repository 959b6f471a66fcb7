"""ResNeXt"""

PAGES = ["aggregated", "three_forms", "resnext_nets", "paper_numbers", "add_pitfall"]
