#include "cli/confirm.h"

#include <unistd.h>

#include <iostream>
#include <string>

namespace wmk::cli {

Status confirm_destructive(Confirmed how, const std::string& question) {
  if (how == Confirmed::yes_flag)
    return {};
  if (isatty(STDIN_FILENO) != 1) {
    return make_error(Errc::invalid_argument,
                      "this deletes for good and stdin is not a terminal to ask on: add --yes "
                      "to confirm");
  }
  std::cerr << question << " [y/N] " << std::flush;
  std::string answer;
  if (!std::getline(std::cin, answer))
    answer.clear();
  if (answer == "y" || answer == "Y" || answer == "yes" || answer == "YES")
    return {};
  return make_error(Errc::conflict, "not confirmed: nothing was deleted");
}

}  // namespace wmk::cli
