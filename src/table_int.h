/* table_int.h */
