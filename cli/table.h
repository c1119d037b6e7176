#pragma once
// Plain-text tables for the CLI's human-readable listings.

#include <string>
#include <vector>

namespace wmk::cli {

// Prints rows to stdout, one line each, cells left-aligned in columns two spaces
// apart (the last cell of a row unpadded). Never fails.
void print_table(const std::vector<std::vector<std::string>>& rows);

}  // namespace wmk::cli
