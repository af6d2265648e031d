/* load_int.h */
