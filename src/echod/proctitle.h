/* SPDX-License-Identifier: MIT */
/* Process titles shown by ps: "echod: master", "echod: worker [ADDR]:PORT". */
#pragma once

/* Must run first in main(): moves the environment out of the way so the
 * title may use the space of both argv and environ. */
void proctitle_init(int argc, char **argv);
/* Sets the title (cut to the space there is). */
void proctitle_set_text(const char *title);
