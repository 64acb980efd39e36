"""The pictures of a study as data and as drawings: the curves and the search scatter."""
