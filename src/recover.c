/* recover.c - placeholder, being written */
