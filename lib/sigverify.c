/* sigverify.c — being written (foundation issue); see sigverify.h. */
