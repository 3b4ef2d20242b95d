/* frame.c — being written (foundation issue); see frame.h. */
