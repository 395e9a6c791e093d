#pragma once

// The replica set's table: which nodes host a model, which versions each
// serves, and how many requests each has outstanding. Plain data (no CAF),
// owned by one replica set actor.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace actorserve {

class replica_table {
public:
  struct member {
    std::string node;
    std::set<std::string> versions; // available versions
    bool local = false;
  };

  /// Replaces the membership; nodes that stay keep their outstanding counts.
  /// Returns the nodes that left.
  std::vector<std::string> update(const std::vector<member>& members);

  /// Takes a node out at once (it went away). False if it was not a member.
  bool remove(const std::string& node);

  /// The node for a request: among the members serving `pinned` (any
  /// available version when empty) the one with the fewest outstanding
  /// requests, the local one when equal, else taking turns. When no member
  /// advertises what is asked, any member (its router then answers, e.g.
  /// version_not_found or model_loading). None when there is no member.
  std::optional<std::string> choose(const std::string& pinned);

  void started(const std::string& node);
  void finished(const std::string& node);

  int64_t outstanding(const std::string& node) const;
  size_t size() const { return members_.size(); }

private:
  struct slot {
    member info;
    int64_t outstanding = 0;
  };

  std::optional<std::string> least_outstanding(bool (*eligible)(const slot&,
                                                                const std::string&),
                                               const std::string& pinned);

  std::map<std::string, slot> members_;
  uint64_t turn_ = 0; // rotates ties between equal remote members
};

} // namespace actorserve
