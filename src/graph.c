/* graph.c - placeholder, being written */
