/* SPDX-License-Identifier: MIT */
/*
 * The journal MESSAGE_IDs echod logs. Each kind of event has its own
 * 128-bit id, generated once and never reused, so that
 * `journalctl MESSAGE_ID=...` finds it. systemd/echod.catalog explains each.
 */
#pragma once

#define ECHOD_MID_STARTED         "4f434b91aa674edba131cd737d84e3e8"
#define ECHOD_MID_STOPPING        "9f9a4fa6e6a64f72970791beb452cbbe"
#define ECHOD_MID_STOPPED         "c2bce8a5bcfc41a98fcb139594e895b6"
#define ECHOD_MID_RELOADED        "b8c18c6801b343a5b5c9089b6bea1d49"
#define ECHOD_MID_RELOAD_FAILED   "790c5cac2ec74b6bb35aa0561f3304fd"
#define ECHOD_MID_CONFIG_INVALID  "c4df4f3310354dba850b10d8e2fe0c82"
#define ECHOD_MID_CONN_OPEN       "fb8492e167704a2bbbc8cb13f049d770"
#define ECHOD_MID_CONN_CLOSE      "b8891436a2ba4f56b2ec6232e48a8db5"
#define ECHOD_MID_CONN_REFUSED    "e29f9500428d4220bfa8b312b8fdb4e8"
#define ECHOD_MID_WORKER_FAILED   "72a2499053fe474ea10cc1a7bcadfeef"
#define ECHOD_MID_PRIVS_DROPPED   "f0bbf5629e2c4a7c8a3180c8b6d76422"
#define ECHOD_MID_STATUS          "466d07f2ce9e45dd9d2f5d5ad69848da"
#define ECHOD_MID_RESOURCE        "9cd635c768064a2ea64002582747b8ad"
#define ECHOD_MID_LIMIT_WARNING   "86dcaf8e1a794843a418e077d8453c44"
#define ECHOD_MID_PAYLOAD         "38c4921d289f4c69801f7f072a0d91f0"
#define ECHOD_MID_SHUTDOWN_KILLED "bde0f7c062b741bfa932df981a7ed5a6"
#define ECHOD_MID_CONN_SUMMARY    "6bdb164a2dbf48a08f7bfadc62fb1b9f"
#define ECHOD_MID_UPGRADING       "ab8609eebcc74cec840cd3a66fc725c6"
#define ECHOD_MID_UPGRADED        "411324fa52a3440786b34798504ae04b"
#define ECHOD_MID_UPGRADE_FAILED  "75773aead06e48c4b9726634ad8e79ec"
#define ECHOD_MID_UDP_SUMMARY     "0d6b3f5e8a2c4f19b7e4c1a93d58f2a6"
#define ECHOD_MID_UDP_WORKER      "5a9e2c7d14b84f0e9c3a6b8d2e71f405"
