// The run's c10d store: where it listens.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "cluster.hpp"

namespace {

// The local addresses (hex, as the kernel writes them) of the sockets listening on `port`.
std::vector<std::string> listeners(const std::string& table, std::uint16_t port) {
  std::ifstream in(table);
  std::vector<std::string> out;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state;
    fields >> slot >> local >> remote >> state;
    const std::size_t colon = local.rfind(':');
    if (state == "0A" && std::stoul(local.substr(colon + 1), nullptr, 16) == port) out.push_back(local.substr(0, colon));
  }
  return out;
}

// The store has no authentication: a run whose processes all meet on loopback (nas-host --nproc)
// must not be reachable from other machines.
TEST(Cluster, AStoreOnLoopbackListensOnLoopbackOnly) {
  nas::Cluster server(nas::World{0, 2, 0, "127.0.0.1", 0, false, "nas-host"}, std::chrono::seconds(30));
  ASSERT_NE(server.port(), 0);
  EXPECT_EQ(listeners("/proc/net/tcp", server.port()), std::vector<std::string>{"0100007F"});  // 127.0.0.1
  EXPECT_TRUE(listeners("/proc/net/tcp6", server.port()).empty());

  nas::Cluster client(nas::World{1, 2, 0, "127.0.0.1", server.port(), false, "nas-host"}, std::chrono::seconds(30));
  client.store().set("greeting", std::string("hello"));
  EXPECT_EQ(server.store().get_to_str("greeting"), "hello");
}

}  // namespace
