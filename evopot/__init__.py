"""evopot: discover interatomic potentials as short, readable formulas."""

__version__ = "0.1.0"


def search(config, **kwargs):
    """Run ``evopot search`` from Python; see :func:`evopot.api.search`."""
    from evopot.api import search as _search

    return _search(config, **kwargs)
