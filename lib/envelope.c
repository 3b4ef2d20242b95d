/* envelope.c — being written (foundation issue); see envelope.h. */
