/* alert.c — being written (foundation issue); see alert.h. */
