// The /metrics endpoint: a real HTTP exchange over loopback.
#include "server/metrics_http.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "prometheus/counter.h"

namespace candies::server {
namespace {

// Sends `request` to host:port and returns everything the server answers.
std::string Exchange(const std::string& address, const std::string& request) {
  const size_t colon = address.rfind(':');
  int port = 0;
  EXPECT_TRUE(absl::SimpleAtoi(address.substr(colon + 1), &port));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, address.substr(0, colon).c_str(), &sa.sin_addr);
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  // A blocked server shows as a timeout, not a hung test.
  timeval tv{3, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  if (request.empty()) return std::to_string(fd);  // connected only: the caller drives it
  EXPECT_EQ(send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

TEST(MetricsHttpServer, ServesTheRegistryAtMetricsOnly) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto& c = prometheus::BuildCounter().Name("test_things_total").Help("things").Register(*registry);
  c.Add({{"kind", "a"}}).Increment(3);
  auto server = MetricsHttpServer::Start("127.0.0.1:0", registry);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = (*server)->address();
  ASSERT_NE(address, "127.0.0.1:0");
  const std::string ok = Exchange(address, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(ok.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << ok;
  EXPECT_NE(ok.find("text/plain; version=0.0.4"), std::string::npos);
  EXPECT_NE(ok.find("test_things_total{kind=\"a\"} 3"), std::string::npos) << ok;
  c.Add({{"kind", "a"}}).Increment();
  EXPECT_NE(Exchange(address, "GET /metrics HTTP/1.0\r\n\r\n").find("test_things_total{kind=\"a\"} 4"),
            std::string::npos);
  EXPECT_EQ(Exchange(address, "GET / HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(Exchange(address, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").rfind("HTTP/1.1 404", 0), 0u);
  // Bad addresses name the setting.
  auto bad = MetricsHttpServer::Start("nohost", registry);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("metrics-listen"), std::string::npos);
  // The port is taken now.
  auto taken = MetricsHttpServer::Start(address, registry);
  EXPECT_EQ(taken.status().code(), absl::StatusCode::kUnavailable) << taken.status();
}

// Issue 14: a client that sends one byte at a time (forever) held the old
// single-threaded endpoint; now it holds one worker and scrapes go on.
TEST(MetricsHttpServer, SlowClientDoesNotBlockAnotherScrape) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto& c = prometheus::BuildCounter().Name("test_slow_total").Help("x").Register(*registry);
  c.Add({}).Increment(2);
  MetricsHttpOptions options;
  options.threads = 2;
  auto server = MetricsHttpServer::Start("127.0.0.1:0", registry, options);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = (*server)->address();
  const int slow = std::stoi(Exchange(address, ""));
  std::atomic<bool> stop{false};
  std::thread trickle([&] {
    const std::string head = "GET /metrics HTTP/1.1\r\nX-Slow: ";
    for (size_t i = 0; !stop; ++i) {
      const char byte = i < head.size() ? head[i] : 'a';
      if (send(slow, &byte, 1, MSG_NOSIGNAL) != 1) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the slow one is being read
  for (int i = 0; i < 3; ++i) {
    const std::string ok = Exchange(address, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(ok.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << ok;
    EXPECT_NE(ok.find("test_slow_total 2"), std::string::npos) << ok;
  }
  stop = true;
  trickle.join();
  close(slow);
}

}  // namespace
}  // namespace candies::server
