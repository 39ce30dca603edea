"""Target drivers: the only code that touches real systems. See `base.Target`."""
