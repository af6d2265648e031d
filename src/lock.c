/* lock.c - placeholder, being written */
