// dnsproxyd --policy end to end, the issue 11 list: CNAME chains, several endpoints with
// different rules, spoofed and duplicate responses, the parked-frame bound, TTL expiry; v4 and
// v6. The real binary runs in the node namespace between clients and knotd (test/support), each
// test with its own policy file. Every assertion on the daemon reads its stats file (README,
// "Stats file"), and checks a counter moved by exactly what the test sent; what clients saw
// comes from kdig or from a small python3 UDP client.
//
// The embedded agent plumbs each batch and ACKs it (--agent-plumb-delay slows it where a test
// needs parked frames to stay parked); --max-delay is long wherever an ACK is expected, so a slow
// ACK on a busy machine fails an assertion on released_on_ack instead of passing as a release at
// the max delay.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "test/support/daemon_fixture.h"
#include "test/support/policy_text.h"
#include "test/support/privileges.h"

namespace dnsproxy::test {
namespace {

using namespace std::chrono_literals;

// Sends DNS queries over UDP from a fixed source address and port, then prints every answer
// that comes back within WAIT_S seconds, one line each ("answer ID rcode N ancount N from
// ADDR"); once EXPECT answers came (EXPECT > 0), it listens 0.5 s more for any extra one and
// exits. argv: SRC SPORT SERVER SPORT WAIT_S EXPECT then ID,NAME,TYPE per query.
constexpr const char* kQueryScript = R"(import socket, struct, sys, time
src, sport, dst, dport, wait = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
expect = int(sys.argv[6])
s = socket.socket(socket.AF_INET6 if ":" in src else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, sport))
wire = lambda n: b"".join(bytes([len(l)]) + l.encode() for l in n.split(".")) + b"\0"
for q in sys.argv[7:]:
    qid, name, qtype = q.split(",")
    t = 28 if qtype == "AAAA" else 1
    s.sendto(struct.pack("!HHHHHH", int(qid), 0x0100, 1, 0, 0, 0) + wire(name) + struct.pack("!HH", t, 1), (dst, dport))
print("sent", len(sys.argv) - 7, flush=True)
deadline = time.monotonic() + wait
answers = 0
while time.monotonic() < deadline:
    s.settimeout(max(deadline - time.monotonic(), 0.001))
    try:
        data, peer = s.recvfrom(4096)
    except socket.timeout:
        break
    qid, flags, qd, an = struct.unpack("!HHHH", data[:8])
    print("answer", qid, "rcode", flags & 15, "ancount", an, "from", peer[0], flush=True)
    answers += 1
    if answers == expect:
        deadline = min(deadline, time.monotonic() + 0.5)
)";

// Sends forged responses from port 53 of SRC to DST:DPORT, one per ID,NAME,TYPE,ADDRESS (one
// answer record, TTL 60), in order. argv: SRC DST DPORT then the responses.
constexpr const char* kResponseScript = R"(import socket, struct, sys
src, dst, dport = sys.argv[1], sys.argv[2], int(sys.argv[3])
family = socket.AF_INET6 if ":" in src else socket.AF_INET
s = socket.socket(family, socket.SOCK_DGRAM)
s.bind((src, 53))
wire = lambda n: b"".join(bytes([len(l)]) + l.encode() for l in n.split(".")) + b"\0"
for r in sys.argv[4:]:
    qid, name, qtype, address = r.split(",")
    t = 28 if qtype == "AAAA" else 1
    rdata = socket.inet_pton(socket.AF_INET6 if t == 28 else socket.AF_INET, address)
    msg = struct.pack("!HHHHHH", int(qid), 0x8180, 1, 1, 0, 0) + wire(name) + struct.pack("!HH", t, 1)
    msg += struct.pack("!HHHIH", 0xc00c, t, 1, 60, len(rdata)) + rdata
    s.sendto(msg, (dst, dport))
)";

class PolicyCasesTest : public DaemonFixture {
 protected:
  // dnsproxyd --policy with `policy` (a file of this test's), small rings, and `extra`.
  std::unique_ptr<Dnsproxyd> start_with_policy(const std::string& policy,
                                               std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        "--policy",      write_file("policy-" + std::to_string(policies_++) + ".yaml", policy),
        "--umem-frames", "4096",
        "--ring-size",   "1024"};
    args.insert(args.end(), extra.begin(), extra.end());
    return start_daemon(args);
  }

  // kdig's full answer from `source` (kdig's -b) to `server`:`port`.
  std::string kdig_from(const std::string& source, const std::string& server,
                        const std::string& name, const std::string& type,
                        const std::string& port = "53") {
    return kdig(server, name, type, {"-b", source, "-p", port, "+time=2", "+retry=0"});
  }

  // The python3 query client in the client namespace, in the background (its output in a file).
  struct Client {
    BackgroundProcess process;
    std::string log_path;
    // Waits for it to exit; its output, "answer ..." lines included.
    std::string output() {
      for (int i = 0; i < 1000 && process.running(); ++i) std::this_thread::sleep_for(10ms);
      process.stop();
      std::ifstream in(log_path);
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      std::filesystem::remove(log_path);
      return text;
    }
  };
  // Sends `queries` (ID,NAME,TYPE) from source:port to server:53 and listens up to `wait_s`
  // seconds, or 0.5 s past the `expect`th answer.
  std::unique_ptr<Client> start_client(const std::string& source, int port,
                                       const std::string& server, double wait_s, int expect,
                                       const std::vector<std::string>& queries) {
    std::vector<std::string> argv = {"python3",
                                     "-c",
                                     kQueryScript,
                                     source,
                                     std::to_string(port),
                                     server,
                                     "53",
                                     std::to_string(wait_s),
                                     std::to_string(expect)};
    argv.insert(argv.end(), queries.begin(), queries.end());
    const std::string log_path =
        std::filesystem::temp_directory_path() / ("dnsproxy-client-" + std::to_string(::getpid()) +
                                                  "-" + std::to_string(clients_++) + ".log");
    auto process = BackgroundProcess::start(argv, &topology_->client(), log_path);
    EXPECT_TRUE(process) << process.error().message;
    if (!process) return nullptr;
    return std::make_unique<Client>(Client{std::move(*process), log_path});
  }

  // Forged responses from port 53 of `source` (an upstream address) to `client`:`port`.
  Result<std::string> send_responses(const std::string& source, const std::string& client, int port,
                                     const std::vector<std::string>& responses) {
    std::vector<std::string> argv = {"python3", "-c",   kResponseScript,
                                     source,    client, std::to_string(port)};
    argv.insert(argv.end(), responses.begin(), responses.end());
    return topology_->upstream().exec(argv);
  }

  static size_t count_of(const std::string& text, const std::string& needle) {
    size_t n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
      ++n;
    return n;
  }

  int policies_ = 0;
  int clients_ = 0;
};

// L7 rules match the question only: an allowed alias resolves through its whole chain, even to a
// name the client may not query itself (wwwalias -> www). toFQDNs selects an address by the
// question or by the name at the chain's end (the A/AAAA record's owner); the names in between
// select nothing (policy_handler.cpp, stage_mappings). One mapping per selected (name, address).
TEST_F(PolicyCasesTest, CnameChainsResolveAndTheirSelectedNamesAreLearned) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(build());
  const std::string policy = frontend_policy(
      "[{matchPattern: \"alias*.example.test\"}, {matchName: wwwalias.example.test}]",
      "[{matchName: host11.example.test}, {matchName: alias2.example.test}, "
      "{matchPattern: \"alias3*.example.test\"}, {matchName: alias4.example.test}, "
      "{matchName: host14.example.test}, {matchName: alias5-b.example.test}]");
  auto daemon = start_with_policy(policy, {"--max-delay", "1000"});
  ASSERT_TRUE(daemon);
  struct Case {
    const char* server;
    const char* name;
    const char* type;
    const char* address;  // at the chain's end
    uint64_t notices;     // selected (name, address) pairs
  };
  const Case cases[] = {
      // alias1 -> host11: the chain's end is selected.
      {Topology::kUpstreamV4, "alias1.example.test", "A", "203.0.113.12", 1},
      // alias2 -> alias2-b -> host12: the question is selected.
      {Topology::kUpstreamV6, "alias2.example.test", "AAAA", "2001:db8:e::d", 1},
      // alias3 -> alias3-b -> alias3-c -> host13: "alias3*" matches the question and both middle
      // names; only the question's mapping is learned.
      {Topology::kUpstreamV4, "alias3.example.test", "A", "203.0.113.14", 1},
      {Topology::kUpstreamV6, "alias3.example.test", "AAAA", "2001:db8:e::e", 1},
      // alias4 -> host14: both ends selected, the address is learned under both names.
      {Topology::kUpstreamV4, "alias4.example.test", "A", "203.0.113.15", 2},
      // alias5 -> alias5-b -> host15: only the middle name is selected: nothing is.
      {Topology::kUpstreamV6, "alias5.example.test", "AAAA", "2001:db8:e::10", 0},
      // Names match without case, in the rules, the tracker and the selectors alike.
      {Topology::kUpstreamV6, "ALIAS1.Example.TEST", "AAAA", "2001:db8:e::c", 1},
      // wwwalias -> www: allowed by its question although www itself is refused below.
      {Topology::kUpstreamV4, "wwwalias.example.test", "A", "203.0.113.80", 0},
  };
  uint64_t notices = 0, parked = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string answer = kdig(c.server, c.name, c.type);
    EXPECT_NE(answer.find("status: NOERROR"), std::string::npos) << answer;
    EXPECT_NE(answer.find("CNAME"), std::string::npos) << answer;
    EXPECT_NE(answer.find(std::string(c.address) + "\n"), std::string::npos) << answer;
    notices += c.notices;
    parked += c.notices > 0 ? 1 : 0;
  }
  const std::string denied = kdig(Topology::kUpstreamV4, "www.example.test", "A");
  EXPECT_NE(denied.find("status: REFUSED"), std::string::npos) << denied;

  // The control thread has learned every notice (the workers sent them before releasing).
  nlohmann::json stats;
  EXPECT_TRUE(wait_for(
      *daemon, [&](const nlohmann::json& s) { return control(s, "notices") == notices; }, stats))
      << stats.dump(2);
  // One mapping per notice: every selected (name, address) pair is distinct.
  EXPECT_EQ(control(stats, "fqdn_mappings"), notices) << stats.dump(2);

  ASSERT_EQ(daemon->stop(), 0) << daemon->log();
  auto final_stats = daemon->stats();
  ASSERT_TRUE(final_stats);
  const nlohmann::json& s = *final_stats;
  const uint64_t n = std::size(cases);
  EXPECT_EQ(counter(s, "allowed"), n) << s.dump(2);
  EXPECT_EQ(counter(s, "denied_name_not_allowed"), 1u);
  EXPECT_EQ(counter(s, "responses"), n);
  EXPECT_EQ(counter(s, "responses_parked"), parked);
  EXPECT_EQ(counter(s, "released_no_selector"), n - parked);
  EXPECT_EQ(counter(s, "notices"), notices);
  EXPECT_EQ(control(s, "notices"), notices);
  EXPECT_EQ(counter(s, "mappings_truncated"), 0u);
  // The agent plumbed exactly the selected pairs, and each parked response was released once,
  // by its ACK.
  EXPECT_EQ(control(s, "agent_addresses_plumbed"), notices);
  EXPECT_EQ(control(s, "tickets_acked"), parked);
  EXPECT_EQ(counter(s, "released_on_ack"), parked);
  EXPECT_EQ(counter(s, "released_at_max_delay"), 0u);
  EXPECT_EQ(counter(s, "late_acks"), 0u);
  EXPECT_EQ(parked_frames(s), 0u);
  EXPECT_EQ(s.at("frame_check"), "ok");
}

// Two endpoints with different DNS rules on one client host: the same name is allowed for one
// and refused for the other, and each deny reason has its own counter, v4 and v6.
TEST_F(PolicyCasesTest, EndpointsWithDifferentRulesAreDecidedApart) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(build());
  // The backend (102) and an address that is no endpoint at all; a second DNS server of another
  // identity (the node has neighbour entries for all of them).
  ASSERT_TRUE(topology_->add_client_address("192.0.2.11", "2001:db8:c::11"));
  ASSERT_TRUE(topology_->add_client_address("192.0.2.12", "2001:db8:c::12"));
  ASSERT_TRUE(topology_->add_upstream_address("198.51.100.54", "2001:db8:5::54"));
  const std::string policy =
      "identities:\n" + std::string(kKubeDnsIdentity) +
      "  - {id: 20002, labels: {app: other-dns}, cidrs: [198.51.100.54/32, "
      "\"2001:db8:5::54/128\"]}\n"
      "endpoints:\n" +
      std::string(kFrontendEndpoint) +
      "  - {id: 102, identity: 10002, labels: {app: backend}, ips: [192.0.2.11, "
      "\"2001:db8:c::11\"]}\n"
      "policies:\n"
      "  - name: frontend-dns\n"
      "    endpointSelector: {matchLabels: {app: frontend}}\n"
      "    egress:\n"
      "      - toEndpoints: [{matchLabels: {k8s-app: kube-dns}}]\n"
      "        toPorts:\n"
      "          - ports: [{port: \"53\", protocol: ANY}]\n"
      "            rules: {dns: [{matchPattern: \"host*.example.test\"}]}\n"
      "  - name: backend-dns\n"
      "    endpointSelector: {matchLabels: {app: backend}}\n"
      "    egress:\n"
      "      - toEndpoints: [{matchLabels: {k8s-app: kube-dns}}]\n"
      "        toPorts:\n"
      "          - ports: [{port: \"53\", protocol: UDP}]\n"
      "            rules: {dns: [{matchName: www.example.test}]}\n";
  // 5353 is a DNS port too, so a query to it reaches the policy (and finds no rule).
  auto daemon = start_with_policy(policy, {"--dns-port", "53", "--dns-port", "5353"});
  ASSERT_TRUE(daemon);
  struct Family {
    const char* frontend;
    const char* backend;
    const char* stranger;
    const char* server;
    const char* other_server;
    const char* type;
    const char* host3;
    const char* www;
  };
  const Family families[] = {
      {"192.0.2.10", "192.0.2.11", "192.0.2.12", Topology::kUpstreamV4, "198.51.100.54", "A",
       "203.0.113.4", "203.0.113.80"},
      {"2001:db8:c::10", "2001:db8:c::11", "2001:db8:c::12", Topology::kUpstreamV6,
       "2001:db8:5::54", "AAAA", "2001:db8:e::4", "2001:db8:e::80"},
  };
  const auto refused = [](const std::string& answer) {
    return answer.find("status: REFUSED") != std::string::npos;
  };
  for (const Family& f : families) {
    SCOPED_TRACE(f.server);
    // host3: the frontend's, not the backend's; www: the other way round.
    std::string a = kdig_from(f.frontend, f.server, "host3.example.test", f.type);
    EXPECT_NE(a.find(f.host3), std::string::npos) << a;
    a = kdig_from(f.backend, f.server, "host3.example.test", f.type);
    EXPECT_TRUE(refused(a)) << a;
    a = kdig_from(f.backend, f.server, "www.example.test", f.type);
    EXPECT_NE(a.find(f.www), std::string::npos) << a;
    a = kdig_from(f.frontend, f.server, "www.example.test", f.type);
    EXPECT_TRUE(refused(a)) << a;
    // The backend's name to a server its rule does not select; to a port it has no rule for;
    // and from an address that is no endpoint.
    a = kdig_from(f.backend, f.other_server, "www.example.test", f.type);
    EXPECT_TRUE(refused(a)) << a;
    a = kdig_from(f.backend, f.server, "www.example.test", f.type, "5353");
    EXPECT_TRUE(refused(a)) << a;
    a = kdig_from(f.stranger, f.server, "host3.example.test", f.type);
    EXPECT_TRUE(refused(a)) << a;
  }
  ASSERT_EQ(daemon->stop(), 0) << daemon->log();
  auto stats = daemon->stats();
  ASSERT_TRUE(stats);
  const nlohmann::json& s = *stats;
  EXPECT_EQ(counter(s, "allowed"), 4u) << s.dump(2);
  EXPECT_EQ(counter(s, "denied_name_not_allowed"), 4u);
  EXPECT_EQ(counter(s, "denied_server_not_selected"), 2u);
  EXPECT_EQ(counter(s, "denied_no_rule_for_port"), 2u);
  EXPECT_EQ(counter(s, "denied_unknown_source"), 2u);
  EXPECT_EQ(counter(s, "replied"), 10u);
  EXPECT_EQ(counter(s, "responses"), 4u);
  EXPECT_EQ(counter(s, "released_no_selector"), 4u);
  EXPECT_EQ(s.at("frame_check"), "ok");
}

// A response is accepted only when it answers a query this proxy forwarded, once: one with the
// wrong ID, server address or client port (unmatched), the wrong question (name or type), or a
// second copy of the real answer (duplicate) is dropped under its own reason while the query is
// outstanding, and the client gets the real answer exactly once; an answer after the tracker's
// 5 s lifetime is late. The query goes to an upstream address where nothing listens, so the test
// writes every response itself. The endpoint's toFQDNs selects every name queried or forged, and
// the forgeries carry addresses of their own: only the real answers' addresses get plumbed.
TEST_F(PolicyCasesTest, SpoofedAndDuplicateResponsesAreDroppedEachUnderItsReason) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(build());
  ASSERT_TRUE(topology_->add_upstream_address("198.51.100.54", "2001:db8:5::54"));
  ASSERT_TRUE(topology_->add_upstream_address("198.51.100.55", "2001:db8:5::55"));
  const std::string policy =
      std::string("identities:\n") +
      "  - {id: 20001, labels: {k8s-app: kube-dns}, cidrs: [198.51.100.53/32, 198.51.100.54/32, "
      "198.51.100.55/32, \"2001:db8:5::53/128\", \"2001:db8:5::54/128\", "
      "\"2001:db8:5::55/128\"]}\n"
      "endpoints:\n" +
      std::string(kFrontendEndpoint) +
      "policies:\n"
      "  - name: frontend-dns\n"
      "    endpointSelector: {matchLabels: {app: frontend}}\n"
      "    egress:\n"
      "      - toEndpoints: [{matchLabels: {k8s-app: kube-dns}}]\n"
      "        toPorts:\n"
      "          - ports: [{port: \"53\", protocol: ANY}]\n"
      "            rules: {dns: [{matchPattern: \"host*.example.test\"}]}\n"
      "      - toFQDNs: [{matchPattern: \"host*.example.test\"}]\n";
  auto daemon = start_with_policy(policy, {"--max-delay", "1000"});
  ASSERT_TRUE(daemon);
  struct Family {
    const char* client;
    const char* server;
    const char* other_server;
    const char* type;
    const char* other_type;
    const char* address;       // the real answer's
    const char* forged;        // the forgeries', of the same type
    const char* other_forged;  // ... of the other type
  };
  const Family families[] = {
      {Topology::kClientV4, "198.51.100.54", "198.51.100.55", "A", "AAAA", "203.0.113.4",
       "203.0.113.66", "2001:db8:e::66"},
      {Topology::kClientV6, "2001:db8:5::54", "2001:db8:5::55", "AAAA", "A", "2001:db8:e::4",
       "2001:db8:e::66", "203.0.113.66"},
  };
  constexpr int kPort = 40053;
  constexpr int kId = 16962;  // 0x4242
  uint64_t round = 0;
  for (const Family& f : families) {
    SCOPED_TRACE(f.client);
    ++round;
    auto client = start_client(f.client, kPort, f.server, 8.0, 1,
                               {std::to_string(kId) + ",host3.example.test," + f.type});
    ASSERT_TRUE(client);
    nlohmann::json stats;
    ASSERT_TRUE(wait_for(
        *daemon, [&](const nlohmann::json& s) { return counter(s, "allowed") == round; }, stats))
        << stats.dump(2);
    const std::string id = std::to_string(kId);
    const std::string real = id + ",host3.example.test," + f.type + "," + f.address;
    const std::string forged = id + ",host3.example.test," + f.type + "," + f.forged;
    // Wrong server address (everything else right), then wrong client port.
    ASSERT_TRUE(send_responses(f.other_server, f.client, kPort, {forged}));
    ASSERT_TRUE(send_responses(f.server, f.client, kPort + 1, {forged}));
    // Wrong ID, wrong name, wrong type; then the real answer and a copy of it.
    auto sent = send_responses(
        f.server, f.client, kPort,
        {std::to_string(kId + 1) + ",host3.example.test," + f.type + "," + f.forged,
         id + ",host4.example.test," + f.type + "," + f.forged,
         id + ",host3.example.test," + f.other_type + "," + f.other_forged, real, real});
    ASSERT_TRUE(sent) << sent.error().message;
    const std::string received = client->output();
    EXPECT_EQ(count_of(received, "answer "), 1u) << received;
    EXPECT_EQ(count_of(received, "answer " + id + " rcode 0 ancount 1 from " + f.server), 1u)
        << received;
  }
  // The real answers' two addresses were learned and plumbed, no forged one.
  nlohmann::json before_late = snapshot(*daemon);
  EXPECT_EQ(control(before_late, "notices"), 2u) << before_late.dump(2);
  EXPECT_EQ(control(before_late, "fqdn_mappings"), 2u);
  EXPECT_EQ(control(before_late, "agent_addresses_plumbed"), 2u);
  EXPECT_EQ(drop(before_late, "response_late"), 0u);

  // An answer after the tracker's lifetime (5 s; the README's response_late) is late.
  auto client = start_client(Topology::kClientV4, kPort + 2, "198.51.100.54", 6.5, 0,
                             {std::to_string(kId) + ",host5.example.test,A"});
  ASSERT_TRUE(client);
  nlohmann::json stats;
  ASSERT_TRUE(wait_for(
      *daemon, [&](const nlohmann::json& s) { return counter(s, "allowed") == 3; }, stats))
      << stats.dump(2);
  std::this_thread::sleep_for(5200ms);
  ASSERT_TRUE(send_responses("198.51.100.54", Topology::kClientV4, kPort + 2,
                             {std::to_string(kId) + ",host5.example.test,A,203.0.113.6"}));
  const std::string received = client->output();
  EXPECT_EQ(count_of(received, "answer "), 0u) << received;

  ASSERT_EQ(daemon->stop(), 0) << daemon->log();
  auto final_stats = daemon->stats();
  ASSERT_TRUE(final_stats);
  const nlohmann::json& s = *final_stats;
  EXPECT_EQ(counter(s, "allowed"), 3u) << s.dump(2);
  EXPECT_EQ(counter(s, "responses"), 2u);
  EXPECT_EQ(counter(s, "responses_parked"), 2u);
  EXPECT_EQ(counter(s, "released_on_ack"), 2u);
  EXPECT_EQ(drop(s, "response_unmatched"), 6u);
  EXPECT_EQ(drop(s, "response_question_mismatch"), 4u);
  EXPECT_EQ(drop(s, "response_duplicate"), 2u);
  EXPECT_EQ(drop(s, "response_late"), 1u);
  EXPECT_EQ(control(s, "notices"), 2u);
  EXPECT_EQ(control(s, "agent_addresses_plumbed"), 2u);
  EXPECT_EQ(s.at("frame_check"), "ok");
}

// More toFQDNs-selected new responses at once than --max-parked: the first max-parked are
// parked; each one after is dropped (parked_full) with its mappings still sent to the agent, so
// the client's retry finds them plumbed and is released at once. The client gets exactly the
// parked ones first, each released once, and no frame leaks. v4, then v6. The agent's plumbing
// delay (2 s) outlasts the max delay (1 s), so the parked frames stay parked until then and are
// released at the max delay; their ACKs come late.
TEST_F(PolicyCasesTest, ResponsesBeyondTheParkedBoundAreDroppedCountedAndLeakNothing) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(build());
  const std::string policy = frontend_policy("[{matchPattern: \"host*.example.test\"}]",
                                             "[{matchPattern: \"host2*.example.test\"}]");
  constexpr uint64_t kBound = 4, kQueries = 8;
  auto daemon = start_with_policy(policy, {"--max-parked", std::to_string(kBound), "--max-delay",
                                           "1000", "--agent-plumb-delay", "2000"});
  ASSERT_TRUE(daemon);
  const struct {
    const char* client;
    const char* server;
    const char* type;
    int port;
  } families[] = {{Topology::kClientV4, Topology::kUpstreamV4, "A", 40100},
                  {Topology::kClientV6, Topology::kUpstreamV6, "AAAA", 40110}};
  uint64_t round = 0;
  for (const auto& f : families) {
    SCOPED_TRACE(f.client);
    ++round;
    std::vector<std::string> queries;
    for (uint64_t i = 0; i < kQueries; ++i)  // host20..host27: new names, new addresses
      queries.push_back(std::to_string(100 + i) + ",host2" + std::to_string(i) + ".example.test," +
                        f.type);
    auto client = start_client(f.client, f.port, f.server, 5.0, kBound, queries);
    ASSERT_TRUE(client);
    // Every response in, none released yet: the bound holds exactly kBound frames.
    nlohmann::json s;
    ASSERT_TRUE(wait_for(
        *daemon,
        [&](const nlohmann::json& x) {
          return counter(x, "responses") == (2 * round - 1) * kQueries;
        },
        s))
        << s.dump(2);
    EXPECT_EQ(counter(s, "responses_parked"), round * kBound) << s.dump(2);
    EXPECT_EQ(drop(s, "parked_full"), round * (kQueries - kBound));
    EXPECT_EQ(counter(s, "released_at_max_delay"), (round - 1) * kBound);
    EXPECT_EQ(counter(s, "released_on_ack"), 0u);
    EXPECT_EQ(parked_frames(s), kBound);
    // The dropped responses' mappings were sent all the same.
    EXPECT_EQ(counter(s, "notices"), (2 * round - 1) * kQueries);
    EXPECT_EQ(drop(s, "notice_ring_full"), 0u);

    const std::string received = client->output();
    EXPECT_EQ(count_of(received, "answer "), kBound) << received;
    EXPECT_EQ(count_of(received, " rcode 0 ancount 1 from "), kBound) << received;
    // The batch is plumbed: the parked frames' ACKs find them released already.
    ASSERT_TRUE(wait_for(
        *daemon, [&](const nlohmann::json& x) { return counter(x, "late_acks") == round * kBound; },
        s))
        << s.dump(2);
    EXPECT_EQ(parked_frames(s), 0u);
    EXPECT_EQ(counter(s, "released_at_max_delay"), round * kBound);

    // The retry of every name: all plumbed now (the dropped ones' too), released at once. It
    // comes over 2 s after the first answers (the plumbing delay), past the handler's 1 s
    // refresh slack: each sends its mapping again, as a refresh.
    auto retry = start_client(f.client, f.port + 1, f.server, 5.0, kQueries, queries);
    ASSERT_TRUE(retry);
    const std::string retried = retry->output();
    EXPECT_EQ(count_of(retried, " rcode 0 ancount 1 from "), kQueries) << retried;
    ASSERT_TRUE(wait_for(
        *daemon,
        [&](const nlohmann::json& x) { return counter(x, "responses") == round * 2 * kQueries; },
        s))
        << s.dump(2);
    EXPECT_EQ(counter(s, "released_plumbed"), round * kQueries) << s.dump(2);
    EXPECT_EQ(counter(s, "responses_parked"), round * kBound);
    EXPECT_EQ(counter(s, "notices"), round * 2 * kQueries);
  }
  // Every batch plumbed, the refreshes' too (each waits the plumbing delay).
  nlohmann::json last;
  EXPECT_TRUE(wait_for(
      *daemon,
      [&](const nlohmann::json& x) {
        return control(x, "agent_addresses_plumbed") == 4 * kQueries;
      },
      last))
      << last.dump(2);
  ASSERT_EQ(daemon->stop(), 0) << daemon->log();
  auto stats = daemon->stats();
  ASSERT_TRUE(stats);
  const nlohmann::json& s = *stats;
  EXPECT_EQ(counter(s, "responses"), 4 * kQueries) << s.dump(2);
  EXPECT_EQ(counter(s, "responses_parked"), 2 * kBound);
  EXPECT_EQ(drop(s, "parked_full"), 2 * (kQueries - kBound));
  EXPECT_EQ(counter(s, "released_at_max_delay"), 2 * kBound);
  EXPECT_EQ(counter(s, "released_on_ack"), 0u);
  EXPECT_EQ(counter(s, "late_acks"), 2 * kBound);
  EXPECT_EQ(counter(s, "released_plumbed"), 2 * kQueries);
  EXPECT_EQ(control(s, "notices"), 4 * kQueries);
  EXPECT_EQ(control(s, "notices_plumbed"), 2 * kQueries);  // the refreshes
  EXPECT_EQ(control(s, "fqdn_mappings"), 2 * kQueries);
  EXPECT_EQ(control(s, "agent_addresses_plumbed"), 4 * kQueries);
  EXPECT_EQ(s.at("workers").at(0).at("counters").at("parked"), 2 * kBound);
  EXPECT_EQ(s.at("workers").at(0).at("counters").at("released"), 2 * kBound);
  EXPECT_EQ(parked_frames(s), 0u);
  EXPECT_EQ(s.at("frame_check"), "ok");
}

// A mapping leaves the FQDN cache when its TTL passes (short: 2 s; shortalias -> short: the
// chain's smallest TTL, not the alias's 300 s), its plumbing with it, and the next response for
// the name is new again: parked until plumbed, learned anew. Within the TTL a response whose
// addresses are all plumbed is released at once.
TEST_F(PolicyCasesTest, AMappingLeavesTheCacheAtItsTtlAndTheNextResponseIsNewAgain) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(build());
  const std::string policy =
      frontend_policy("[{matchPattern: \"short*.example.test\"}]",
                      "[{matchName: short.example.test}, {matchName: shortalias.example.test}]");
  auto daemon = start_with_policy(policy, {"--max-delay", "1000"});
  ASSERT_TRUE(daemon);
  const auto resolves = [&](const char* server, const char* name, const char* type,
                            const char* address) {
    const std::string answer = kdig(server, name, type);
    EXPECT_NE(answer.find(std::string(address) + "\n"), std::string::npos) << answer;
  };
  const auto first_learned = std::chrono::steady_clock::now();
  // shortalias A: (shortalias, .251) and (short, .251), both selected; parked until plumbed.
  resolves(Topology::kUpstreamV4, "shortalias.example.test", "A", "203.0.113.251");
  // short A: .251 is plumbed for the endpoint already: released at once, nothing sent (the
  // plumbing covers its TTL within the handler's 1 s refresh slack).
  resolves(Topology::kUpstreamV4, "short.example.test", "A", "203.0.113.251");
  // short AAAA: (short, ::fb), parked until plumbed.
  resolves(Topology::kUpstreamV6, "short.example.test", "AAAA", "2001:db8:e::fb");
  nlohmann::json s;
  ASSERT_TRUE(wait_for(
      *daemon, [&](const nlohmann::json& x) { return counter(x, "responses") == 3; }, s))
      << s.dump(2);
  EXPECT_EQ(control(s, "notices"), 3u) << s.dump(2);
  EXPECT_EQ(control(s, "fqdn_mappings"), 3u);
  EXPECT_EQ(counter(s, "responses_parked"), 2u);
  EXPECT_EQ(counter(s, "released_on_ack"), 2u);
  EXPECT_EQ(counter(s, "released_plumbed"), 1u);

  // Every mapping expires, none before its TTL (2 s after it was learned; the cache is swept
  // once a second).
  ASSERT_TRUE(wait_for(
      *daemon, [&](const nlohmann::json& x) { return control(x, "fqdn_mappings") == 0; }, s,
      6000ms))
      << s.dump(2);
  EXPECT_GE(std::chrono::steady_clock::now() - first_learned, 2000ms);

  // The next response for short A is new again: parked until plumbed, learned, one mapping.
  resolves(Topology::kUpstreamV4, "short.example.test", "A", "203.0.113.251");
  ASSERT_TRUE(wait_for(
      *daemon, [&](const nlohmann::json& x) { return counter(x, "responses") == 4; }, s))
      << s.dump(2);
  EXPECT_EQ(counter(s, "responses_parked"), 3u) << s.dump(2);
  EXPECT_EQ(counter(s, "released_plumbed"), 1u);
  EXPECT_EQ(control(s, "notices"), 4u);
  EXPECT_EQ(control(s, "fqdn_mappings"), 1u);

  ASSERT_EQ(daemon->stop(), 0) << daemon->log();
  auto stats = daemon->stats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(counter(*stats, "responses"), 4u) << stats->dump(2);
  EXPECT_EQ(counter(*stats, "released_on_ack"), 3u);
  EXPECT_EQ(counter(*stats, "released_at_max_delay"), 0u);
  EXPECT_EQ(parked_frames(*stats), 0u);
  EXPECT_EQ(stats->at("frame_check"), "ok");
}

// A client may use an address for the TTL of the last answer it got. An answer whose TTL
// outlives the address's plumbing (by more than the handler's 1 s slack) is released at once, as
// plumbed, and its mapping is sent again so the agent extends the allow-map entry; without that,
// a name answered again near the end of its TTL would lose its L3 allow while the client still
// uses the address.
TEST_F(PolicyCasesTest, AnAnswerOutlivingItsPlumbingIsReleasedAtOnceAndRefreshesIt) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(build());
  const std::string policy = frontend_policy("[{matchPattern: \"host*.example.test\"}]",
                                             "[{matchName: host5.example.test}]");
  auto daemon = start_with_policy(policy, {"--max-delay", "1000"});
  ASSERT_TRUE(daemon);
  for (const auto& [server, type, address] :
       {std::tuple{Topology::kUpstreamV4, "A", "203.0.113.6\n"},
        std::tuple{Topology::kUpstreamV6, "AAAA", "2001:db8:e::6\n"}}) {
    SCOPED_TRACE(type);
    // New: parked until plumbed (TTL 300).
    std::string answer = kdig(server, "host5.example.test", type);
    EXPECT_NE(answer.find(address), std::string::npos) << answer;
    // Plumbed, and the same TTL from now ends later than the plumbing, past the slack.
    std::this_thread::sleep_for(1500ms);
    answer = kdig(server, "host5.example.test", type);
    EXPECT_NE(answer.find(address), std::string::npos) << answer;
  }
  nlohmann::json s;
  EXPECT_TRUE(wait_for(
      *daemon, [&](const nlohmann::json& x) { return control(x, "agent_addresses_plumbed") == 4; },
      s))
      << s.dump(2);
  EXPECT_EQ(counter(s, "responses_parked"), 2u) << s.dump(2);
  EXPECT_EQ(counter(s, "released_on_ack"), 2u);
  EXPECT_EQ(counter(s, "released_plumbed"), 2u);
  EXPECT_EQ(counter(s, "notices"), 4u);
  // The refreshes found their pairs plumbed, waited for nothing, and were plumbed again.
  EXPECT_EQ(control(s, "notices_plumbed"), 2u);
  EXPECT_EQ(control(s, "tickets_acked"), 2u);
  EXPECT_EQ(control(s, "fqdn_mappings"), 2u);
  ASSERT_EQ(daemon->stop(), 0) << daemon->log();
  auto stats = daemon->stats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(counter(*stats, "released_at_max_delay"), 0u) << stats->dump(2);
  EXPECT_EQ(stats->at("frame_check"), "ok");
}

// A forged response to a client address the node has no neighbour entry for: dns_steer's FIB
// lookup says NO_NEIGH. It used to pass such a packet to the kernel, which forwarded it to the
// client unchecked (the query hole of issue 11, on the response side); now it goes to the worker
// like any other (fib_no_neigh), the tracker drops it (response_unmatched) and the client gets
// nothing.
TEST_F(PolicyCasesTest, AResponseToAClientWithoutANeighbourEntryIsStillChecked) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  ASSERT_NO_FATAL_FAILURE(build());
  ASSERT_TRUE(topology_->add_upstream_address("198.51.100.54", "2001:db8:5::54"));
  // No neighbour entry on the node for these (add_client_address would add one).
  ASSERT_TRUE(topology_->client().add_address("eth0", "192.0.2.13/24"));
  ASSERT_TRUE(topology_->client().add_address("eth0", "2001:db8:c::13/64"));
  auto daemon = start_with_policy(frontend_policy("[{matchPattern: \"host*.example.test\"}]", ""));
  ASSERT_TRUE(daemon);
  for (const auto& [client_address, server, type, address] :
       {std::tuple{"192.0.2.13", "198.51.100.54", "A", "203.0.113.66"},
        std::tuple{"2001:db8:c::13", "2001:db8:5::54", "AAAA", "2001:db8:e::66"}}) {
    SCOPED_TRACE(client_address);
    auto listener = start_client(client_address, 40000, server, 2.0, 0, {});
    ASSERT_TRUE(listener);
    std::this_thread::sleep_for(300ms);  // bound before the forgery comes
    ASSERT_TRUE(send_responses(server, client_address, 40000,
                               {std::string("4660,host3.example.test,") + type + "," + address}));
    const std::string received = listener->output();
    EXPECT_EQ(count_of(received, "answer "), 0u) << received;
  }
  ASSERT_EQ(daemon->stop(), 0) << daemon->log();
  auto stats = daemon->stats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(drop(*stats, "response_unmatched"), 2u) << stats->dump(2);
  EXPECT_GE(stats->at("dns_steer").value("fib_no_neigh", uint64_t{0}), 2u);
}

}  // namespace
}  // namespace dnsproxy::test
