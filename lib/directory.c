/* directory.c — being written (foundation issue); see directory.h. */
