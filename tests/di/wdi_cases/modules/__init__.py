"""Module discovery: a root module importing a sibling package's module."""
