#pragma once
// Asking before a destructive command (key delete, user delete): on a terminal the
// admin types "yes"; a script reads no terminal and must say --yes.

#include <string>

#include "core/util/result.h"

namespace wmk::cli {

enum class Confirmed { yes_flag, ask };

// Ok when the command may go ahead: --yes was given, or stdin is a terminal and the
// answer to "QUESTION [y/N]" is y or yes. Errc::invalid_argument naming --yes when
// stdin is not a terminal; Errc::conflict ("not confirmed", exit 1) when the admin
// answers anything else.
Status confirm_destructive(Confirmed how, const std::string& question);

}  // namespace wmk::cli
