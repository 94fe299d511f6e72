"""Rule data, one folder per jurisdiction. See docs/rule-language.md. (This file only makes the folder a package.)"""
