"""From nothing to a potential: sampling and labelling new data (``evopot data``) and the
active-learning loop (``evopot learn``)."""
