/* yamltree.c — being written (foundation issue); see yamltree.h. */
