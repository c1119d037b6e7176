#pragma once
// Plain-text tables for the CLI's human-readable listings.

#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "core/util/json.h"

namespace wmk::cli {

// Prints rows to stdout, one line each, cells left-aligned in columns two spaces
// apart (the last cell of a row unpadded). Never fails.
void print_table(const std::vector<std::vector<std::string>>& rows);

// Prints a listing the way every `list` command does: with --json an array of
// write(w, item) objects; else `none` when there are no items, or a table of header
// then row(item) for each.
template <class T, class Write, class Row>
void print_listing(bool json, const std::vector<T>& items, Write write, std::string_view none,
                   std::vector<std::string> header, Row row) {
  if (json) {
    util::JsonWriter w;
    w.begin_array();
    for (const auto& item : items)
      write(w, item);
    std::cout << w.end_array().str() << "\n";
    return;
  }
  if (items.empty()) {
    std::cout << none << "\n";
    return;
  }
  std::vector<std::vector<std::string>> table = {std::move(header)};
  for (const auto& item : items)
    table.push_back(row(item));
  print_table(table);
}

}  // namespace wmk::cli
