"""Stage actions, one module per stage; each is named by its rule in rules/<stage>.yaml."""
