"""Getting cost into the cache: FOCUS and Azure export files, and the synthetic demo estate."""
