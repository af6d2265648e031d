/* failpoints.c - placeholder, being written */
