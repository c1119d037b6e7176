#include "core/audit/audit.h"

#include <pwd.h>
#include <unistd.h>

#include <vector>

namespace wmk::audit {

namespace {

constexpr std::size_t kMaxField = 1000;

std::string clean(const std::string& s) {
  std::string out = s.substr(0, kMaxField);
  for (char& c : out) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f)
      c = '?';
  }
  return out;
}

}  // namespace

void AuditLog::record(const AuditEvent& e) {
  auto st = db_.prepare(
      "INSERT INTO audit (at, login, event, outcome, key_fpr, session, client_addr, detail) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  st.bind_all(clock_.now(), clean(e.login), clean(e.event), clean(e.outcome), clean(e.key_fpr),
              clean(e.session), clean(e.client_addr), clean(e.detail));
  st.run();
}

std::vector<AuditEntry> AuditLog::query(const AuditQuery& q) {
  std::string sql =
      "SELECT id, at, login, event, outcome, key_fpr, session, client_addr, detail "
      "FROM audit WHERE 1 = 1";
  if (q.login)
    sql += " AND login = ?";
  if (q.since)
    sql += " AND at >= ?";
  if (q.key_fpr)
    sql += " AND substr(key_fpr, 1, length(?)) = ?";  // a fingerprint or a prefix of one
  sql += " ORDER BY at DESC, id DESC";
  if (q.limit > 0)
    sql += " LIMIT ?";
  auto st = db_.prepare(sql);
  int i = 0;
  if (q.login)
    st.bind(++i, *q.login);
  if (q.since)
    st.bind(++i, *q.since);
  if (q.key_fpr) {
    st.bind(++i, *q.key_fpr);
    st.bind(++i, *q.key_fpr);
  }
  if (q.limit > 0)
    st.bind(++i, q.limit);
  std::vector<AuditEntry> out;
  while (st.step()) {
    AuditEntry a;
    a.id = st.column_int(0);
    a.at = st.column_int(1);
    a.event.login = st.column_text(2);
    a.event.event = st.column_text(3);
    a.event.outcome = st.column_text(4);
    a.event.key_fpr = st.column_text(5);
    a.event.session = st.column_text(6);
    a.event.client_addr = st.column_text(7);
    a.event.detail = st.column_text(8);
    out.push_back(std::move(a));
  }
  return out;
}

std::string admin_actor() {
  const uid_t uid = getuid();
  long size = sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buf(size > 0 ? static_cast<std::size_t>(size) : 16384);
  struct passwd pw {};
  struct passwd* found = nullptr;
  if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr)
    return std::string("cli:") + found->pw_name;
  return "cli:uid " + std::to_string(uid);
}

}  // namespace wmk::audit
