"""Column transforms shared by the feature stages."""


def min_max(values):
    """Scales numbers to [0, 1]; a constant column becomes all zeros."""
    low, high = min(values), max(values)
    span = (high - low) or 1
    return [round((v - low) / span, 6) for v in values]
