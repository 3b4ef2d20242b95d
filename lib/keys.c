/* keys.c — being written (foundation issue); see keys.h. */
