// actorserve-ctl: the admin tool. It connects to a node's cluster port as a
// CAF peer and sends the registry the same admin messages HTTP sends, so an
// operator can list, reload, unload and shift traffic without the HTTP API
// (and without an API key: the cluster port is the trust boundary, which is
// why it is loopback or mutual TLS). Prints the answer as the API's JSON.
//
//   actorserve-ctl --connect HOST:PORT [--tls-cert F --tls-key F --tls-ca F]
//                  list | status MODEL | reload MODEL [VERSION] | load MODEL
//                  | unload MODEL [VERSION] | traffic MODEL DEFAULT [VERSION=WEIGHT...]

#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "actors/cluster.hpp"
#include "messages/error.hpp"
#include "messages/type_ids.hpp"
#include "protocols/status_json.hpp"

namespace {

using namespace actorserve;

constexpr auto usage =
    "usage: actorserve-ctl --connect HOST:PORT [--tls-cert FILE --tls-key FILE "
    "--tls-ca FILE] [--timeout-s N]\n"
    "       list | status MODEL | reload MODEL [VERSION] | load MODEL\n"
    "       | unload MODEL [VERSION] | traffic MODEL DEFAULT [VERSION=WEIGHT ...]\n";

struct invocation {
  server_options tls; // only the cluster TLS fields are used
  endpoint node;
  std::chrono::seconds timeout{300};
  std::vector<std::string> command;
};

invocation parse(int argc, char** argv) {
  invocation result;
  std::map<std::string, std::string*> file_flags{
      {"--tls-cert", &result.tls.cluster_tls_cert},
      {"--tls-key", &result.tls.cluster_tls_key},
      {"--tls-ca", &result.tls.cluster_tls_ca}};
  std::string connect;
  std::string timeout;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto takes_value =
        arg == "--connect" || arg == "--timeout-s" || file_flags.count(arg);
    if (!takes_value) {
      result.command.push_back(arg);
      continue;
    }
    if (i + 1 == argc)
      throw config_error(arg + ": needs a value");
    std::string value = argv[++i];
    if (arg == "--connect")
      connect = value;
    else if (arg == "--timeout-s")
      result.timeout = std::chrono::seconds{std::stoi(value)};
    else
      *file_flags[arg] = value;
  }
  auto nodes = parse_endpoints(connect, "--connect");
  if (nodes.size() != 1)
    throw config_error("--connect: give one HOST:PORT");
  result.node = nodes.front();
  if (result.command.empty())
    throw config_error("no command given");
  return result;
}

traffic_split parse_traffic(const std::vector<std::string>& command) {
  traffic_split split;
  split.default_version = command.size() > 2 ? command[2] : "";
  for (size_t i = 3; i < command.size(); ++i) {
    auto equals = command[i].find('=');
    if (equals == std::string::npos)
      throw config_error("traffic: expected VERSION=WEIGHT, got " + command[i]);
    split.weights[command[i].substr(0, equals)] =
        std::stoi(command[i].substr(equals + 1));
  }
  return split;
}

/// Sends the command to the registry and prints the answer; returns the exit
/// code.
int run(caf::actor_system& system, const registry_actor& registry,
        const invocation& call) {
  caf::scoped_actor self{system};
  const auto& cmd = call.command;
  int code = 0;
  auto print = [](const model_status& status) {
    std::cout << to_json(status).dump(2) << "\n";
  };
  auto fail = [&](caf::error& err) {
    auto problem = to_api_error(err);
    std::cerr << "actorserve-ctl: " << code_name(problem.code) << ": " << problem.message
              << "\n";
    code = 1;
  };
  auto arg = [&](size_t i) { return i < cmd.size() ? cmd[i] : std::string{}; };
  auto need = [&](size_t n) {
    if (cmd.size() < n)
      throw config_error(cmd[0] + ": missing arguments");
  };
  if (cmd[0] == "list") {
    self->request(registry, call.timeout, atom::list_v)
        .receive(
            [&](std::vector<model_status>& all) {
              auto models = nlohmann::json::array();
              for (const auto& status : all)
                models.push_back(to_json(status));
              std::cout << nlohmann::json{{"models", models}}.dump(2) << "\n";
            },
            fail);
  } else if (cmd[0] == "status") {
    need(2);
    self->request(registry, call.timeout, atom::status_v, arg(1)).receive(print, fail);
  } else if (cmd[0] == "reload") {
    need(2);
    self->request(registry, call.timeout, atom::reload_v, arg(1), arg(2))
        .receive(print, fail);
  } else if (cmd[0] == "load") {
    need(2);
    self->request(registry, call.timeout, atom::load_v, arg(1)).receive(print, fail);
  } else if (cmd[0] == "unload" && cmd.size() == 2) { // the whole model
    self->request(registry, call.timeout, atom::unload_v, arg(1)).receive(print, fail);
  } else if (cmd[0] == "unload") {
    need(3);
    self->request(registry, call.timeout, atom::unload_v, arg(1), arg(2))
        .receive(print, fail);
  } else if (cmd[0] == "traffic") {
    need(3);
    self->request(registry, call.timeout, atom::traffic_v, arg(1), parse_traffic(cmd))
        .receive(print, fail);
  } else {
    throw config_error("unknown command " + cmd[0]);
  }
  return code;
}

} // namespace

int main(int argc, char** argv) {
  try {
    auto call = parse(argc, argv);
    caf::actor_system_config cfg;
    register_message_types(cfg);
    configure_cluster(cfg, call.tls);
    caf::actor_system system{cfg};
    auto registry = connect_registry(system, call.node, cluster_tls_enabled(call.tls));
    if (!registry) {
      std::cerr << "actorserve-ctl: cannot connect to " << call.node.host << ":"
                << call.node.port << ": " << system.render(registry.error()) << "\n";
      return 1;
    }
    return run(system, *registry, call);
  } catch (const std::exception& e) { // config_error, std::stoi
    std::cerr << "actorserve-ctl: " << e.what() << "\n" << usage;
    return 2;
  }
}
