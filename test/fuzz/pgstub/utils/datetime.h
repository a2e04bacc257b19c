/* pgstub: everything the fuzz harnesses need is in postgres.h */
#include "postgres.h"
