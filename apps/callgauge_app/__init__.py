"""The Callgauge application: the `callgauge` command. It sits at the top of the import graph, the
only package that may import a service (to start or compose one); the libraries under libs/ never do."""
