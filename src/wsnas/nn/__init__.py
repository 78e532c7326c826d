"""Building blocks of networks and supernets: the primitive ops, choice blocks, stacked evaluation of many children."""
