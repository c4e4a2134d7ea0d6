/* daecl — log lines on stderr, for the core and (through the host table) for
 * plugins. The level comes from daecl_log_set_level (the CLI's --quiet and
 * --verbose) or $DAECL_LOG (error, warn, info, debug); info by default. */
#ifndef DAECL_CORE_LOG_H
#define DAECL_CORE_LOG_H

#include "core/error.h"
#include "daecl/plugin.h"

void daecl_log_set_level(int level);
int daecl_log_level(void);
/* One line "daecl: [who] message" when level <= the current level. */
void daecl_log(int level, const char *who, const char *fmt, ...) DAECL_PRINTF(3, 4);

#endif
