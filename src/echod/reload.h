/* SPDX-License-Identifier: MIT */
/*
 * SIGHUP: read and validate the configuration again and, only when it is
 * valid and its new listeners could be opened, switch to it. Unchanged
 * listeners are kept (their queued connections survive); running workers
 * keep the settings they started with.
 */
#pragma once

#include "master.h"

void master_reload(struct master *m);
