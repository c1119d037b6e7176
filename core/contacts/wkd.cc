#include "core/contacts/wkd.h"

#include <openssl/evp.h>

#include <chrono>
#include <optional>
#include <thread>

#include "core/util/ascii.h"

namespace wmk::contacts {

namespace {

std::string percent_encode(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

bool plausible_domain(std::string_view d) {
  if (d.empty() || d.size() > 253 || d.front() == '.' || d.back() == '.' || d.front() == '-')
    return false;
  for (char c : d) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
      return false;
  }
  return d.find("..") == std::string_view::npos;
}

}  // namespace

std::string zbase32(std::string_view bytes) {
  static const char kAlphabet[] = "ybndrfg8ejkmcpqxot1uwisza345h769";
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    acc = acc << 8 | c;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += kAlphabet[(acc >> bits) & 31];
    }
  }
  if (bits > 0)
    out += kAlphabet[(acc << (5 - bits)) & 31];
  return out;
}

Result<WkdUrls> wkd_urls(std::string_view address) {
  auto at = address.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == address.size())
    return make_error(Errc::invalid_argument, "not an address: " + std::string(address));
  std::string_view local = address.substr(0, at);
  std::string domain = util::ascii_lower(address.substr(at + 1));
  if (!plausible_domain(domain))
    return make_error(Errc::invalid_argument,
                      "the domain of " + std::string(address) + " cannot be looked up by WKD");
  if (local.find_first_of(" \t\r\n<>") != std::string_view::npos)
    return make_error(Errc::invalid_argument, "not an address: " + std::string(address));
  std::string lowered = util::ascii_lower(local);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(lowered.data(), lowered.size(), md, &n, EVP_sha1(), nullptr);
  std::string hash = zbase32(std::string_view(reinterpret_cast<const char*>(md), n));
  std::string l = percent_encode(local);
  WkdUrls urls;
  urls.advanced = "https://openpgpkey." + domain + "/.well-known/openpgpkey/" + domain + "/hu/" +
                  hash + "?l=" + l;
  urls.direct = "https://" + domain + "/.well-known/openpgpkey/hu/" + hash + "?l=" + l;
  return urls;
}

Result<OpenPgpScan> check_wkd_answer(std::string_view body, std::string_view address) {
  if (body.size() > kWkdMaxBytes)
    return make_error(Errc::invalid_argument, "the WKD answer is larger than 256 KB");
  auto scan = scan_openpgp(body);
  if (!scan)
    return make_error(Errc::invalid_argument,
                      "the WKD answer is not an OpenPGP key: " + scan.error().message);
  if (scan->has_secret)
    return make_error(Errc::invalid_argument, "the WKD answer holds a secret key: refused");
  if (scan->primary_keys != 1)
    return make_error(
        Errc::invalid_argument,
        "the WKD answer holds " + std::to_string(scan->primary_keys) + " keys, not one");
  std::string want = util::ascii_lower(address);
  bool found = false;
  for (const auto& uid : scan->user_ids)
    found = found || user_id_address(uid) == want;
  if (!found)
    return make_error(Errc::invalid_argument,
                      "the key published by WKD does not carry the address " + want);
  return scan;
}

Result<WkdResult> wkd_lookup(std::string_view address, const net::HttpsOptions& options) {
  auto urls = wkd_urls(address);
  if (!urls)
    return urls.error();
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + kWkdTimeout;
  struct Attempt {
    const char* method;
    std::string url;
  };
  const Attempt attempts[] = {{"advanced", urls->advanced}, {"direct", urls->direct}};
  std::string outcomes;
  bool all_absent = true;
  std::optional<Error> bad_answer;
  for (const auto& a : attempts) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      outcomes +=
          std::string(outcomes.empty() ? "" : "; ") + a.method + ": not tried (no time left)";
      all_absent = false;
      break;
    }
    net::HttpsOptions o = options;
    o.timeout = left;
    o.max_bytes = kWkdMaxBytes;
    net::FetchFailure failure = net::FetchFailure::none;
    auto got = net::https_get(a.url, o, &failure);
    std::string outcome;
    if (!got) {
      outcome = got.error().message;
      if (failure != net::FetchFailure::no_host)
        all_absent = false;
    } else if (got->status == 404) {
      outcome = "no key published (404)";
    } else if (got->status != 200) {
      outcome = "HTTP status " + std::to_string(got->status);
      all_absent = false;
    } else {
      auto checked = check_wkd_answer(got->body, address);
      if (checked)
        return WkdResult{a.method, a.url, std::move(got->body)};
      outcome = checked.error().message;
      all_absent = false;
      if (!bad_answer)
        bad_answer = checked.error();
    }
    outcomes += std::string(outcomes.empty() ? "" : "; ") + a.method + ": " + outcome;
  }
  std::string what = "WKD lookup of " + std::string(address) + ": " + outcomes;
  if (bad_answer)
    return make_error(Errc::corrupt, what);
  if (all_absent)
    return make_error(Errc::not_found, what);
  return make_error(Errc::io, what);
}

std::vector<Result<WkdResult>> wkd_lookup_all(const std::vector<std::string>& addresses,
                                              const net::HttpsOptions& options) {
  std::vector<std::optional<Result<WkdResult>>> slots(addresses.size());
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < addresses.size() && i < kWkdMaxParallel; ++i)
    threads.emplace_back([&, i] { slots[i] = wkd_lookup(addresses[i], options); });
  for (auto& t : threads)
    t.join();
  std::vector<Result<WkdResult>> out;
  out.reserve(addresses.size());
  for (std::size_t i = 0; i < addresses.size(); ++i) {
    if (slots[i])
      out.push_back(std::move(*slots[i]));
    else
      out.push_back(make_error(Errc::invalid_argument,
                               "WKD lookup of " + addresses[i] + ": not tried (more than " +
                                   std::to_string(kWkdMaxParallel) + " addresses at once)"));
  }
  return out;
}

}  // namespace wmk::contacts
