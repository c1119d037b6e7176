#include "core/mail/imap.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libetpan/libetpan.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

namespace wmk::mail {
namespace {

using Clock = std::chrono::steady_clock;

// Blocks SIGPIPE in this thread while libetpan talks to a server that may have closed
// the connection (its writes do not pass MSG_NOSIGNAL); a SIGPIPE raised meanwhile is
// consumed, so the write fails with EPIPE instead of killing the process.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeBlock() {
    sigset_t pending;
    sigpending(&pending);
    if (!was_pending_ && sigismember(&pending, SIGPIPE) == 1) {
      timespec zero{};
      sigtimedwait(&pipe_, nullptr, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

 private:
  sigset_t pipe_;
  sigset_t old_;
  bool was_pending_ = false;
};

// libetpan takes ownership of most arguments; these own the ones it does not.
struct FetchTypeFree {
  void operator()(mailimap_fetch_type* t) const { mailimap_fetch_type_free(t); }
};
struct SetFree {
  void operator()(mailimap_set* s) const { mailimap_set_free(s); }
};
struct StoreFree {
  void operator()(mailimap_store_att_flags* s) const { mailimap_store_att_flags_free(s); }
};
struct FlagListFree {
  void operator()(mailimap_flag_list* l) const { mailimap_flag_list_free(l); }
};
struct FetchListFree {
  void operator()(clist* l) const { mailimap_fetch_list_free(l); }
};
struct X509StoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct X509StoreCtxFree {
  void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};
struct X509StackFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};
struct ChainFree {
  void operator()(carray* c) const { mailstream_certificate_chain_free(c); }
};

using FetchType = std::unique_ptr<mailimap_fetch_type, FetchTypeFree>;
using Set = std::unique_ptr<mailimap_set, SetFree>;
using FetchList = std::unique_ptr<clist, FetchListFree>;

// libetpan's allocations are released with free(); its constructors take strdup()ed
// strings.
char* dup(std::string_view s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (p == nullptr)
    throw std::bad_alloc();
  std::memcpy(p, s.data(), s.size());
  p[s.size()] = '\0';
  return p;
}

// A server's text, cut short and without control bytes, for an error message.
std::string printable(const char* text) {
  std::string out;
  if (text == nullptr)
    return out;
  for (const char* p = text; *p != '\0' && out.size() < 200; ++p)
    out += (static_cast<unsigned char>(*p) < 0x20 || *p == 0x7f) ? ' ' : *p;
  return out;
}

bool is_ip_literal(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

std::int64_t unix_seconds(const mailimap_date_time* dt) {
  if (dt == nullptr)
    return 0;
  std::tm tm{};
  tm.tm_year = dt->dt_year - 1900;
  tm.tm_mon = dt->dt_month - 1;
  tm.tm_mday = dt->dt_day;
  tm.tm_hour = dt->dt_hour;
  tm.tm_min = dt->dt_min;
  tm.tm_sec = dt->dt_sec;
  // dt_zone is the zone as written, e.g. +0130 → 130, -0500 → -500.
  int zone = dt->dt_zone < 0 ? -dt->dt_zone : dt->dt_zone;
  std::int64_t offset = (zone / 100) * 3600 + (zone % 100) * 60;
  if (dt->dt_zone < 0)
    offset = -offset;
  return static_cast<std::int64_t>(timegm(&tm)) - offset;
}

// The IMAP flag for a Maildir flag letter (as Dovecot maps them); $Forwarded is the
// keyword that stands for Maildir's P.
mailimap_flag* imap_flag(Flag flag) {
  switch (flag) {
    case Flag::seen:
      return mailimap_flag_new_seen();
    case Flag::flagged:
      return mailimap_flag_new_flagged();
    case Flag::replied:
      return mailimap_flag_new_answered();
    case Flag::draft:
      return mailimap_flag_new_draft();
    case Flag::trashed:
      return mailimap_flag_new_deleted();
    case Flag::passed:
      return mailimap_flag_new_flag_keyword(dup("$Forwarded"));
  }
  return nullptr;
}

std::optional<Flag> maildir_flag(const mailimap_flag* f) {
  switch (f->fl_type) {
    case MAILIMAP_FLAG_SEEN:
      return Flag::seen;
    case MAILIMAP_FLAG_FLAGGED:
      return Flag::flagged;
    case MAILIMAP_FLAG_ANSWERED:
      return Flag::replied;
    case MAILIMAP_FLAG_DRAFT:
      return Flag::draft;
    case MAILIMAP_FLAG_DELETED:
      return Flag::trashed;
    case MAILIMAP_FLAG_KEYWORD:
      if (f->fl_data.fl_keyword != nullptr && strcasecmp(f->fl_data.fl_keyword, "$Forwarded") == 0)
        return Flag::passed;
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

std::unique_ptr<mailimap_flag_list, FlagListFree> imap_flag_list(const Flags& flags) {
  std::unique_ptr<mailimap_flag_list, FlagListFree> list(mailimap_flag_list_new_empty());
  for (char c : flags.letters()) {
    auto f = static_cast<Flag>(c);
    if (!flags.has(f))
      continue;
    switch (f) {
      case Flag::seen:
      case Flag::flagged:
      case Flag::replied:
      case Flag::draft:
      case Flag::trashed:
      case Flag::passed:
        if (mailimap_flag_list_add(list.get(), imap_flag(f)) != MAILIMAP_NO_ERROR)
          throw std::bad_alloc();
        break;
    }
  }
  return list;
}

// What one FETCH response says about a message.
struct Fetched {
  std::uint32_t uid = 0;
  Flags flags;
  bool has_size = false;
  std::uint64_t size = 0;
  std::int64_t internal_date = 0;
  std::uint64_t modseq = 0;
  const char* section = nullptr;
  std::size_t section_len = 0;
};

Fetched parse_fetch(const mailimap_msg_att* att) {
  Fetched out;
  for (clistiter* it = clist_begin(att->att_list); it != nullptr; it = clist_next(it)) {
    auto* item = static_cast<mailimap_msg_att_item*>(clist_content(it));
    if (item->att_type == MAILIMAP_MSG_ATT_ITEM_DYNAMIC) {
      const mailimap_msg_att_dynamic* dyn = item->att_data.att_dyn;
      if (dyn == nullptr || dyn->att_list == nullptr)
        continue;
      for (clistiter* f = clist_begin(dyn->att_list); f != nullptr; f = clist_next(f)) {
        auto* ff = static_cast<mailimap_flag_fetch*>(clist_content(f));
        if (ff->fl_type != MAILIMAP_FLAG_FETCH_OTHER || ff->fl_flag == nullptr)
          continue;
        if (auto m = maildir_flag(ff->fl_flag))
          out.flags = out.flags.with(*m);
      }
    } else if (item->att_type == MAILIMAP_MSG_ATT_ITEM_STATIC) {
      const mailimap_msg_att_static* st = item->att_data.att_static;
      switch (st->att_type) {
        case MAILIMAP_MSG_ATT_UID:
          out.uid = st->att_data.att_uid;
          break;
        case MAILIMAP_MSG_ATT_RFC822_SIZE:
          out.has_size = true;
          out.size = st->att_data.att_rfc822_size;
          break;
        case MAILIMAP_MSG_ATT_INTERNALDATE:
          out.internal_date = unix_seconds(st->att_data.att_internal_date);
          break;
        case MAILIMAP_MSG_ATT_BODY_SECTION:
          if (st->att_data.att_body_section != nullptr) {
            out.section = st->att_data.att_body_section->sec_body_part;
            out.section_len = st->att_data.att_body_section->sec_length;
          }
          break;
        default:
          break;
      }
    } else if (item->att_type == MAILIMAP_MSG_ATT_ITEM_EXTENSION) {
      const mailimap_extension_data* ext = item->att_data.att_extension_data;
      if (ext != nullptr && ext->ext_extension == &mailimap_extension_condstore &&
          ext->ext_type == MAILIMAP_CONDSTORE_TYPE_FETCH_DATA && ext->ext_data != nullptr)
        out.modseq =
            static_cast<mailimap_condstore_fetch_mod_resp*>(ext->ext_data)->cs_modseq_value;
    }
  }
  return out;
}

std::vector<Fetched> parse_fetch_list(clist* list) {
  std::vector<Fetched> out;
  if (list == nullptr)
    return out;
  for (clistiter* it = clist_begin(list); it != nullptr; it = clist_next(it))
    out.push_back(parse_fetch(static_cast<mailimap_msg_att*>(clist_content(it))));
  return out;
}

// Sets the TLS server name (SNI) before the handshake; IP literals are sent none.
void set_server_name(mailstream_ssl_context* ctx, void* data) {
  auto* host = static_cast<const std::string*>(data);
  if (!is_ip_literal(*host))
    mailstream_ssl_set_server_name(ctx, const_cast<char*>(host->c_str()));
}

// Verifies the certificate chain the server presented: it must lead to a CA in the
// system trust store or in extra_ca_file, be valid now, be meant for a TLS server,
// and name host (DNS name, or IP address for a literal).
Status verify_server_certificate(mailstream* stream, const ImapServer& server) {
  std::unique_ptr<carray, ChainFree> chain(mailstream_get_certificate_chain(stream));
  if (chain == nullptr || carray_count(chain.get()) == 0)
    return make_error(Errc::crypto, "the IMAP server " + server.host + " sent no certificate");

  std::unique_ptr<STACK_OF(X509), X509StackFree> certs(sk_X509_new_null());
  if (certs == nullptr)
    throw std::bad_alloc();
  for (unsigned i = 0; i < carray_count(chain.get()); ++i) {
    auto* der = static_cast<MMAPString*>(carray_get(chain.get(), i));
    const auto* p = reinterpret_cast<const unsigned char*>(der->str);
    X509* cert = d2i_X509(nullptr, &p, static_cast<long>(der->len));
    if (cert == nullptr) {
      ERR_clear_error();
      return make_error(Errc::crypto, "the IMAP server " + server.host +
                                          " sent a certificate that cannot be parsed");
    }
    if (sk_X509_push(certs.get(), cert) == 0) {
      X509_free(cert);
      throw std::bad_alloc();
    }
  }

  std::unique_ptr<X509_STORE, X509StoreFree> store(X509_STORE_new());
  if (store == nullptr || X509_STORE_set_default_paths(store.get()) != 1)
    throw std::runtime_error("cannot load the system's trusted CA certificates");
  if (!server.extra_ca_file.empty() &&
      X509_STORE_load_file(store.get(), server.extra_ca_file.c_str()) != 1) {
    ERR_clear_error();
    return make_error(Errc::config,
                      "cannot read the IMAP CA certificate file " + server.extra_ca_file);
  }
  std::unique_ptr<X509_STORE_CTX, X509StoreCtxFree> ctx(X509_STORE_CTX_new());
  if (ctx == nullptr ||
      X509_STORE_CTX_init(ctx.get(), store.get(), sk_X509_value(certs.get(), 0), certs.get()) != 1)
    throw std::runtime_error("cannot set up certificate verification");
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER);
  if (is_ip_literal(server.host)) {
    X509_VERIFY_PARAM_set1_ip_asc(param, server.host.c_str());
  } else {
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    X509_VERIFY_PARAM_set1_host(param, server.host.c_str(), server.host.size());
  }
  int ok = X509_verify_cert(ctx.get());
  ERR_clear_error();
  if (ok != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    return make_error(Errc::crypto, "the IMAP server's certificate for " + server.host +
                                        " does not verify: " + X509_verify_cert_error_string(err));
  }
  return {};
}

}  // namespace

void ImapClient::SessionFree::operator()(mailimap* s) const {
  SigpipeBlock no_sigpipe;
  mailimap_free(s);
}

ImapClient::ImapClient(std::unique_ptr<mailimap, SessionFree> session, ImapServer server)
    : session_(std::move(session)), server_(std::move(server)) {}
ImapClient::ImapClient(ImapClient&&) noexcept = default;
ImapClient& ImapClient::operator=(ImapClient&&) noexcept = default;
ImapClient::~ImapClient() = default;

void ImapClient::abandon() const {
  // Shuts the socket down so that closing the session later does not wait once more
  // for a server that stopped answering (a TLS close waits for the server's reply).
  if (session_ && session_->imap_stream != nullptr) {
    int fd = mailstream_low_get_fd(mailstream_get_low(session_->imap_stream));
    if (fd >= 0)
      shutdown(fd, SHUT_RDWR);
  }
}

Error ImapClient::failure(int rc, std::string_view what) const {
  std::string where = "IMAP server " + server_.host + ":" + std::to_string(server_.port);
  std::string said = session_ ? printable(session_->imap_response) : std::string();
  std::string tail = said.empty() ? std::string() : " (server said: " + said + ")";
  // libetpan reports a read, connect or handshake that ran out of time as a broken
  // stream, a refused connection or a failed handshake; the clock tells them apart.
  bool timed_out = Clock::now() - op_started_ >= server_.timeout - std::chrono::milliseconds(500);
  if (rc == MAILIMAP_ERROR_STREAM || (timed_out && rc == MAILIMAP_ERROR_SSL))
    abandon();
  if (timed_out && (rc == MAILIMAP_ERROR_STREAM || rc == MAILIMAP_ERROR_SSL ||
                    rc == MAILIMAP_ERROR_CONNECTION_REFUSED))
    return make_error(Errc::io, where + " did not answer within " +
                                    std::to_string(server_.timeout.count()) + " s while " +
                                    std::string(what));
  switch (rc) {
    case MAILIMAP_ERROR_STREAM:
      return make_error(Errc::io,
                        "lost the connection to " + where + " while " + std::string(what));
    case MAILIMAP_ERROR_CONNECTION_REFUSED:
      return make_error(Errc::io, "cannot connect to " + where);
    case MAILIMAP_ERROR_SSL:
      return make_error(Errc::crypto, "TLS handshake with " + where + " failed");
    case MAILIMAP_ERROR_LOGIN:
      return make_error(Errc::bad_credentials, where + " refused the login" + tail);
    case MAILIMAP_ERROR_PARSE:
      return make_error(Errc::io,
                        "cannot parse the answer of " + where + " while " + std::string(what));
    case MAILIMAP_ERROR_MEMORY:
      throw std::bad_alloc();
    default:
      return make_error(Errc::io, where + " failed " + std::string(what) + tail);
  }
}

Result<ImapClient> ImapClient::connect(const ImapServer& server) {
  SigpipeBlock no_sigpipe;
  std::unique_ptr<mailimap, SessionFree> session(mailimap_new(0, nullptr));
  if (session == nullptr)
    throw std::bad_alloc();
  const auto timeout = static_cast<time_t>(server.timeout.count());
  mailimap_set_timeout(session.get(), timeout);
  ImapClient client(std::move(session), server);
  client.op_started_ = Clock::now();
  mailimap* s = client.session_.get();
  std::string host = server.host;  // outlives the handshake's callback

  // The TCP connection is ours, so that it and every stream on it have the timeout
  // (libetpan's own plain-socket connect and STARTTLS use a global delay instead).
  auto fd = client.tcp_connect(server);
  if (!fd)
    return fd.error();
  mailstream* stream =
      server.tls == ImapTls::implicit
          ? mailstream_ssl_open_with_callback_timeout(*fd, timeout, set_server_name, &host)
          : mailstream_socket_open_timeout(*fd, timeout);
  if (stream == nullptr) {
    close(*fd);
    return client.failure(
        server.tls == ImapTls::implicit ? MAILIMAP_ERROR_SSL : MAILIMAP_ERROR_STREAM, "connecting");
  }
  int rc = mailimap_connect(s, stream);  // the session owns the stream now
  if (rc != MAILIMAP_NO_ERROR_NON_AUTHENTICATED && rc != MAILIMAP_NO_ERROR_AUTHENTICATED)
    return client.failure(rc, "waiting for its greeting");

  if (server.tls == ImapTls::starttls) {
    WMK_TRY(client.read_capabilities());
    if (mailimap_has_extension(s, "STARTTLS") == 0)
      return make_error(Errc::io, "the IMAP server " + server.host +
                                      " does not offer STARTTLS; refusing to log in in clear");
    client.op_started_ = Clock::now();
    rc = mailimap_starttls(s);
    if (rc != MAILIMAP_NO_ERROR)
      return client.failure(rc, "asking for STARTTLS");
    mailstream_low* plain = mailstream_get_low(s->imap_stream);
    mailstream_low* tls = mailstream_low_tls_open_with_callback_timeout(
        mailstream_low_get_fd(plain), timeout, set_server_name, &host);
    if (tls == nullptr)
      return client.failure(MAILIMAP_ERROR_SSL, "starting TLS");
    mailstream_low_free(plain);  // frees the plain layer, leaves the socket open
    mailstream_set_low(s->imap_stream, tls);
  }
  WMK_TRY(verify_server_certificate(s->imap_stream, server));
  return client;
}

Result<int> ImapClient::tcp_connect(const ImapServer& server) const {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  std::string port = std::to_string(server.port);
  int gai = getaddrinfo(server.host.c_str(), port.c_str(), &hints, &found);
  if (gai != 0)
    return make_error(Errc::io,
                      "cannot find the IMAP server " + server.host + ": " + gai_strerror(gai));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addresses(found, freeaddrinfo);
  const auto deadline = op_started_ + server.timeout;
  std::string why = "no address";
  for (addrinfo* a = addresses.get(); a != nullptr; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      why = std::strerror(errno);
      continue;
    }
    int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      pollfd p{fd, POLLOUT, 0};
      int ready = left.count() > 0 ? poll(&p, 1, static_cast<int>(left.count())) : 0;
      if (ready == 0) {
        close(fd);
        return make_error(Errc::io,
                          "IMAP server " + server.host + ":" + port + " did not answer within " +
                              std::to_string(server.timeout.count()) + " s while connecting");
      }
      int err = 0;
      socklen_t len = sizeof err;
      if (ready < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
      rc = err == 0 ? 0 : -1;
      errno = err;
    }
    if (rc == 0) {
      // libetpan's streams wait with their own timeout on a blocking socket.
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      return fd;
    }
    why = std::strerror(errno);
    close(fd);
  }
  return make_error(Errc::io,
                    "cannot connect to IMAP server " + server.host + ":" + port + ": " + why);
}

Status ImapClient::read_capabilities() {
  mailimap_capability_data* caps = nullptr;
  int rc = mailimap_capability(session_.get(), &caps);
  if (rc != MAILIMAP_NO_ERROR)
    return failure(rc, "asking for its capabilities");
  mailimap_capability_data_free(caps);  // the session keeps its own copy
  condstore_ = mailimap_has_condstore(session_.get()) != 0;
  qresync_ = mailimap_has_qresync(session_.get()) != 0;
  uidplus_ = mailimap_has_uidplus(session_.get()) != 0;
  return {};
}

Status ImapClient::login(std::string_view user, const util::SecretBuffer& password) {
  SigpipeBlock no_sigpipe;
  op_started_ = Clock::now();
  // libetpan wants C strings: a NUL-terminated copy in locked, wiped memory.
  util::SecretBuffer pass(password.size() + 1);
  std::memcpy(pass.data(), password.data(), password.size());
  std::string login(user);
  int rc =
      mailimap_login(session_.get(), login.c_str(), reinterpret_cast<const char*>(pass.data()));
  if (rc != MAILIMAP_NO_ERROR)
    return failure(rc == MAILIMAP_ERROR_STREAM ? rc : MAILIMAP_ERROR_LOGIN, "logging in");
  WMK_TRY(read_capabilities());
  if (qresync_) {
    // QRESYNC must be enabled to ask for VANISHED (RFC 7162 section 3.2.3).
    clist* list = clist_new();
    if (list == nullptr)
      throw std::bad_alloc();
    struct mailimap_capability* cap =
        mailimap_capability_new(MAILIMAP_CAPABILITY_NAME, nullptr, dup("QRESYNC"));
    clist_append(list, cap);
    mailimap_capability_data* want = mailimap_capability_data_new(list);
    mailimap_capability_data* got = nullptr;
    rc = mailimap_enable(session_.get(), want, &got);
    mailimap_capability_data_free(want);
    if (got != nullptr)
      mailimap_capability_data_free(got);
    if (rc != MAILIMAP_NO_ERROR) {
      if (rc == MAILIMAP_ERROR_STREAM)
        return failure(rc, "enabling QRESYNC");
      qresync_ = false;
    }
  }
  return {};
}

Result<ImapFolderState> ImapClient::select(Folder folder) {
  SigpipeBlock no_sigpipe;
  op_started_ = Clock::now();
  selected_.reset();
  const char* name = folder_name(folder);
  std::uint64_t modseq = 0;
  int rc = condstore_ ? mailimap_select_condstore(session_.get(), name, &modseq)
                      : mailimap_select(session_.get(), name);
  if (rc != MAILIMAP_NO_ERROR) {
    if (rc == MAILIMAP_ERROR_STREAM || rc == MAILIMAP_ERROR_PARSE)
      return failure(rc, std::string("selecting ") + name);
    return make_error(Errc::not_found,
                      "no folder " + std::string(name) + " on the IMAP server " + server_.host +
                          " (server said: " + printable(session_->imap_response) + ")");
  }
  selected_ = folder;
  ImapFolderState state;
  if (const mailimap_selection_info* info = session_->imap_selection_info) {
    state.uidvalidity = info->sel_uidvalidity;
    state.uidnext = info->sel_uidnext;
    state.exists = info->sel_exists;
  }
  if (condstore_ && modseq != 0)
    state.highest_modseq = modseq;
  return state;
}

Status ImapClient::ensure_selected(Folder folder) {
  if (selected_ == folder)
    return {};
  auto r = select(folder);
  if (!r)
    return r.error();
  return {};
}

Status ImapClient::ensure() {
  SigpipeBlock no_sigpipe;
  op_started_ = Clock::now();
  for (Folder folder : kAllFolders) {
    if (folder == Folder::inbox)
      continue;
    const char* name = folder_name(folder);
    auto exists = folder_exists(folder);
    if (!exists)
      return exists.error();
    if (*exists)
      continue;
    int rc = mailimap_create(session_.get(), name);
    if (rc != MAILIMAP_NO_ERROR)
      return failure(rc, std::string("creating ") + name);
  }
  return {};
}

Result<bool> ImapClient::folder_exists(Folder folder) {
  SigpipeBlock no_sigpipe;
  const char* name = folder_name(folder);
  clist* found = nullptr;
  int rc = mailimap_list(session_.get(), "", name, &found);
  if (rc != MAILIMAP_NO_ERROR)
    return failure(rc, std::string("listing ") + name);
  bool exists = found != nullptr && clist_count(found) > 0;
  if (found != nullptr)
    mailimap_list_result_free(found);
  return exists;
}

Result<std::vector<ImapMessage>> ImapClient::list(Folder folder) {
  return list_set(folder, nullptr);
}

Result<std::vector<ImapMessage>> ImapClient::list(Folder folder,
                                                  const std::vector<std::uint32_t>& uids) {
  if (uids.empty())
    return std::vector<ImapMessage>();
  return list_set(folder, &uids);
}

Result<std::vector<ImapMessage>> ImapClient::list_set(Folder folder,
                                                      const std::vector<std::uint32_t>* uids) {
  SigpipeBlock no_sigpipe;
  WMK_TRY(ensure_selected(folder));
  op_started_ = Clock::now();
  FetchType type(mailimap_fetch_type_new_fetch_att_list_empty());
  mailimap_fetch_type_new_fetch_att_list_add(type.get(), mailimap_fetch_att_new_uid());
  mailimap_fetch_type_new_fetch_att_list_add(type.get(), mailimap_fetch_att_new_flags());
  mailimap_fetch_type_new_fetch_att_list_add(type.get(), mailimap_fetch_att_new_rfc822_size());
  mailimap_fetch_type_new_fetch_att_list_add(type.get(), mailimap_fetch_att_new_internaldate());
  if (condstore_)
    mailimap_fetch_type_new_fetch_att_list_add(type.get(), mailimap_fetch_att_new_modseq());
  Set set(uids == nullptr ? mailimap_set_new_interval(1, 0) : mailimap_set_new_empty());  // 1:*
  if (uids != nullptr) {
    for (std::uint32_t uid : *uids)
      if (mailimap_set_add_single(set.get(), uid) != MAILIMAP_NO_ERROR)
        throw std::bad_alloc();
  }
  clist* raw = nullptr;
  int rc = mailimap_uid_fetch(session_.get(), set.get(), type.get(), &raw);
  FetchList result(raw);
  if (rc != MAILIMAP_NO_ERROR)
    return failure(rc, std::string("listing ") + folder_name(folder));
  std::vector<ImapMessage> out;
  for (const Fetched& f : parse_fetch_list(result.get())) {
    if (f.uid == 0)
      continue;
    out.push_back(ImapMessage{f.uid, f.flags, f.size, f.internal_date, f.modseq});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.uid < b.uid; });
  return out;
}

Result<std::vector<ImapHeader>> ImapClient::fetch_sections(Folder folder,
                                                           const std::vector<std::uint32_t>& uids,
                                                           bool header_only,
                                                           std::size_t max_bytes) {
  SigpipeBlock no_sigpipe;
  std::vector<ImapHeader> out;
  if (uids.empty())
    return out;
  WMK_TRY(ensure_selected(folder));
  op_started_ = Clock::now();
  Set set(mailimap_set_new_empty());
  for (std::uint32_t uid : uids)
    if (mailimap_set_add_single(set.get(), uid) != MAILIMAP_NO_ERROR)
      throw std::bad_alloc();
  FetchType type(mailimap_fetch_type_new_fetch_att_list_empty());
  mailimap_fetch_type_new_fetch_att_list_add(type.get(), mailimap_fetch_att_new_uid());
  mailimap_section* section =
      header_only ? mailimap_section_new_header() : mailimap_section_new(nullptr);
  mailimap_fetch_att* att =
      header_only ? mailimap_fetch_att_new_body_peek_section(section)
                  : mailimap_fetch_att_new_body_peek_section_partial(
                        section, 0,
                        static_cast<std::uint32_t>(std::min<std::size_t>(max_bytes, UINT32_MAX)));
  mailimap_fetch_type_new_fetch_att_list_add(type.get(), att);
  clist* raw = nullptr;
  int rc = mailimap_uid_fetch(session_.get(), set.get(), type.get(), &raw);
  FetchList result(raw);
  if (rc != MAILIMAP_NO_ERROR)
    return failure(rc, std::string("fetching from ") + folder_name(folder));
  for (const Fetched& f : parse_fetch_list(result.get())) {
    if (f.uid == 0)
      continue;
    ImapHeader h{f.uid, {}};
    if (f.section != nullptr)
      h.bytes.assign(f.section, std::min(f.section_len, max_bytes));
    out.push_back(std::move(h));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.uid < b.uid; });
  return out;
}

Result<std::vector<ImapHeader>> ImapClient::headers(Folder folder,
                                                    const std::vector<std::uint32_t>& uids) {
  return fetch_sections(folder, uids, true, kMaxMessageBytes);
}

Result<std::vector<ImapHeader>> ImapClient::read_prefixes(Folder folder,
                                                          const std::vector<std::uint32_t>& uids,
                                                          std::size_t max_bytes) {
  return fetch_sections(folder, uids, false, max_bytes);
}

Result<std::uint64_t> ImapClient::size_of(Folder folder, std::uint32_t uid) {
  SigpipeBlock no_sigpipe;
  WMK_TRY(ensure_selected(folder));
  op_started_ = Clock::now();
  FetchType type(mailimap_fetch_type_new_fetch_att_list_empty());
  mailimap_fetch_type_new_fetch_att_list_add(type.get(), mailimap_fetch_att_new_uid());
  mailimap_fetch_type_new_fetch_att_list_add(type.get(), mailimap_fetch_att_new_rfc822_size());
  Set set(mailimap_set_new_single(uid));
  clist* raw = nullptr;
  int rc = mailimap_uid_fetch(session_.get(), set.get(), type.get(), &raw);
  FetchList result(raw);
  if (rc != MAILIMAP_NO_ERROR)
    return failure(rc, std::string("fetching from ") + folder_name(folder));
  for (const Fetched& f : parse_fetch_list(result.get()))
    if (f.uid == uid && f.has_size)
      return f.size;
  return make_error(Errc::not_found, "no message " + std::to_string(uid) + " in " +
                                         folder_name(folder) + " on the IMAP server");
}

Result<std::string> ImapClient::read(Folder folder, std::uint32_t uid) {
  SigpipeBlock no_sigpipe;
  auto size = size_of(folder, uid);
  if (!size)
    return size.error();
  if (*size > kMaxMessageBytes)
    return make_error(Errc::unsupported, "message " + std::to_string(uid) + " is " +
                                             std::to_string(*size) + " bytes, more than the " +
                                             std::to_string(kMaxMessageBytes) + " allowed");
  auto parts = fetch_sections(folder, {uid}, false, kMaxMessageBytes + 1);
  if (!parts)
    return parts.error();
  for (ImapHeader& p : *parts) {
    if (p.uid != uid)
      continue;
    if (p.bytes.size() > kMaxMessageBytes)
      return make_error(Errc::unsupported, "message " + std::to_string(uid) +
                                               " is larger than the " +
                                               std::to_string(kMaxMessageBytes) + " bytes allowed");
    return std::move(p.bytes);
  }
  return make_error(Errc::not_found, "no message " + std::to_string(uid) + " in " +
                                         folder_name(folder) + " on the IMAP server");
}

Status ImapClient::store_flags(Folder folder, std::uint32_t uid, const Flags& flags, bool on) {
  SigpipeBlock no_sigpipe;
  auto size = size_of(folder, uid);  // also says whether the message exists
  if (!size)
    return size.error();
  op_started_ = Clock::now();
  auto list = imap_flag_list(flags);
  std::unique_ptr<mailimap_store_att_flags, StoreFree> store(
      on ? mailimap_store_att_flags_new_add_flags_silent(list.get())
         : mailimap_store_att_flags_new_remove_flags_silent(list.get()));
  if (store == nullptr)
    throw std::bad_alloc();
  list.release();  // owned by store now
  Set set(mailimap_set_new_single(uid));
  int rc = mailimap_uid_store(session_.get(), set.get(), store.get());
  if (rc != MAILIMAP_NO_ERROR)
    return failure(rc, std::string("changing flags in ") + folder_name(folder));
  return {};
}

Status ImapClient::set_flag(Folder folder, std::uint32_t uid, Flag flag, bool on) {
  SigpipeBlock no_sigpipe;
  return store_flags(folder, uid, Flags{flag}, on);
}

Result<std::optional<std::uint32_t>> ImapClient::append(Folder folder, std::string_view message,
                                                        Flags flags) {
  SigpipeBlock no_sigpipe;
  if (message.size() > kMaxMessageBytes)
    return make_error(Errc::unsupported, "the message is " + std::to_string(message.size()) +
                                             " bytes, more than the " +
                                             std::to_string(kMaxMessageBytes) + " allowed");
  op_started_ = Clock::now();
  const char* name = folder_name(folder);
  auto list = imap_flag_list(flags);
  std::uint32_t uidvalidity = 0;
  std::uint32_t uid = 0;
  int rc = uidplus_ ? mailimap_uidplus_append(session_.get(), name, list.get(), nullptr,
                                              message.data(), message.size(), &uidvalidity, &uid)
                    : mailimap_append(session_.get(), name, list.get(), nullptr, message.data(),
                                      message.size());
  if (rc != MAILIMAP_NO_ERROR) {
    Error error = failure(rc, std::string("appending to ") + name);
    if (rc != MAILIMAP_ERROR_STREAM && rc != MAILIMAP_ERROR_PARSE) {
      auto exists = folder_exists(folder);
      if (exists && !*exists)
        return make_error(Errc::not_found,
                          "no folder " + std::string(name) + " on the IMAP server " + server_.host);
    }
    return error;
  }
  if (uidplus_ && uid != 0)
    return std::optional<std::uint32_t>(uid);
  return std::optional<std::uint32_t>();
}

Status ImapClient::remove(Folder folder, std::uint32_t uid) {
  SigpipeBlock no_sigpipe;
  WMK_TRY(store_flags(folder, uid, Flags{Flag::trashed}, true));
  op_started_ = Clock::now();
  int rc;
  if (uidplus_) {
    Set set(mailimap_set_new_single(uid));
    rc = mailimap_uid_expunge(session_.get(), set.get());
  } else {
    rc = mailimap_expunge(session_.get());
  }
  if (rc != MAILIMAP_NO_ERROR)
    return failure(rc, std::string("expunging from ") + folder_name(folder));
  return {};
}

Result<ImapChanges> ImapClient::changes_since(Folder folder, std::uint64_t modseq) {
  SigpipeBlock no_sigpipe;
  if (!condstore_)
    return make_error(Errc::unsupported,
                      "the IMAP server " + server_.host + " does not have CONDSTORE");
  // A fresh SELECT first: its HIGHESTMODSEQ is then no later than any change the
  // fetch below reports, so the next call misses nothing.
  auto state = select(folder);
  if (!state)
    return state.error();
  op_started_ = Clock::now();
  ImapChanges out;
  out.uidvalidity = state->uidvalidity;
  out.highest_modseq = state->highest_modseq.value_or(0);

  FetchType type(mailimap_fetch_type_new_fetch_att_list_empty());
  mailimap_fetch_type_new_fetch_att_list_add(type.get(), mailimap_fetch_att_new_uid());
  mailimap_fetch_type_new_fetch_att_list_add(type.get(), mailimap_fetch_att_new_flags());
  Set all(mailimap_set_new_interval(1, 0));
  clist* raw = nullptr;
  mailimap_qresync_vanished* vanished = nullptr;
  int rc = qresync_ ? mailimap_uid_fetch_qresync(session_.get(), all.get(), type.get(), modseq,
                                                 &raw, &vanished)
                    : mailimap_uid_fetch_changedsince(session_.get(), all.get(), type.get(), modseq,
                                                      &raw);
  FetchList result(raw);
  if (vanished != nullptr) {
    if (vanished->qr_known_uids != nullptr) {
      // Ranges end at the folder's last UID: "*" would otherwise mean 2^32 - 1.
      std::uint32_t last = state->uidnext > 0 ? state->uidnext - 1 : 0;
      for (clistiter* it = clist_begin(vanished->qr_known_uids->set_list); it != nullptr;
           it = clist_next(it)) {
        auto* item = static_cast<mailimap_set_item*>(clist_content(it));
        std::uint32_t first = item->set_first;
        std::uint32_t end = item->set_last == 0 ? last : std::min(item->set_last, last);
        for (std::uint32_t u = first; u != 0 && u <= end; ++u)
          out.vanished.push_back(u);
      }
    }
    mailimap_qresync_vanished_free(vanished);
  }
  if (rc != MAILIMAP_NO_ERROR)
    return failure(rc, std::string("fetching changes in ") + folder_name(folder));
  out.vanished_known = qresync_;
  for (const Fetched& f : parse_fetch_list(result.get())) {
    if (f.uid == 0)
      continue;
    out.changed.push_back(ImapMessage{f.uid, f.flags, 0, 0, f.modseq});
    out.highest_modseq = std::max(out.highest_modseq, f.modseq);
  }
  std::sort(out.changed.begin(), out.changed.end(),
            [](const auto& a, const auto& b) { return a.uid < b.uid; });
  std::sort(out.vanished.begin(), out.vanished.end());
  return out;
}

Status ImapClient::noop() {
  SigpipeBlock no_sigpipe;
  selected_.reset();
  if (!session_ || session_->imap_stream == nullptr)
    return make_error(Errc::io, "the connection to IMAP server " + server_.host + " is closed");
  op_started_ = Clock::now();
  int rc = mailimap_noop(session_.get());
  if (rc != MAILIMAP_NO_ERROR)
    return failure(MAILIMAP_ERROR_STREAM, "checking the connection");  // any failure: gone
  return {};
}

void ImapClient::logout() {
  SigpipeBlock no_sigpipe;
  if (session_ && session_->imap_stream != nullptr) {
    op_started_ = Clock::now();
    mailimap_logout(session_.get());
  }
  selected_.reset();
}

}  // namespace wmk::mail
