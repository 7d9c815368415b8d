#pragma once
// The online half of `pointex`: commands that talk to a running pointexd over HTTP.

#include <CLI/CLI.hpp>
#include <memory>

namespace pointex::cli {

class OnlineCommands {
 public:
  virtual ~OnlineCommands() = default;
  /// Whether the parsed command line chose one of these commands.
  virtual bool selected() const = 0;
  /// Runs the chosen command. Exit status: 0 ok, 1 the daemon refused (HTTP error) or an item
  /// failed (a business result other than ok/exists), 2 the daemon could not be reached.
  virtual int run() = 0;
};

/// Adds `ledger`, `account`, `transfer` and `tail` (with --url / --key) to `app`.
std::unique_ptr<OnlineCommands> add_online_commands(CLI::App& app);

}  // namespace pointex::cli
