#include "core/keys/smime.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>

#include "core/util/encoding.h"

namespace wmk::keys::detail {

namespace {

// ---- one RAII owner per OpenSSL handle

template <class T, void (*F)(T*)>
struct Free {
  void operator()(T* p) const { F(p); }
};
using Bio = std::unique_ptr<BIO, Free<BIO, BIO_free_all>>;
using X509Ptr = std::unique_ptr<X509, Free<X509, X509_free>>;
using PKey = std::unique_ptr<EVP_PKEY, Free<EVP_PKEY, EVP_PKEY_free>>;
using Cms = std::unique_ptr<CMS_ContentInfo, Free<CMS_ContentInfo, CMS_ContentInfo_free>>;
using P12 = std::unique_ptr<PKCS12, Free<PKCS12, PKCS12_free>>;
using Store = std::unique_ptr<X509_STORE, Free<X509_STORE, X509_STORE_free>>;
using StoreCtx = std::unique_ptr<X509_STORE_CTX, Free<X509_STORE_CTX, X509_STORE_CTX_free>>;
using Req = std::unique_ptr<X509_REQ, Free<X509_REQ, X509_REQ_free>>;
using P8 =
    std::unique_ptr<PKCS8_PRIV_KEY_INFO, Free<PKCS8_PRIV_KEY_INFO, PKCS8_PRIV_KEY_INFO_free>>;
using Name = std::unique_ptr<X509_NAME, Free<X509_NAME, X509_NAME_free>>;
using Bn = std::unique_ptr<BIGNUM, Free<BIGNUM, BN_free>>;

struct CertStackFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};
using CertStack = std::unique_ptr<STACK_OF(X509), CertStackFree>;

// The OpenSSL error queue as text, emptied.
std::string openssl_errors() {
  std::string out;
  unsigned long e = 0;
  char buf[256];
  while ((e = ERR_get_error()) != 0) {
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty())
      out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

Error ssl_error(Errc code, const std::string& what) {
  return make_error(code, what + " (" + openssl_errors() + ")");
}

Bio mem_bio(std::string_view data) {
  Bio b(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (!b)
    throw std::bad_alloc();
  return b;
}

Bio new_mem_bio() {
  Bio b(BIO_new(BIO_s_mem()));
  if (!b)
    throw std::bad_alloc();
  return b;
}

std::string bio_string(BIO* b) {
  char* p = nullptr;
  long n = BIO_get_mem_data(b, &p);
  return n > 0 ? std::string(p, static_cast<std::size_t>(n)) : std::string();
}

// A NUL-terminated copy of a secret for C APIs that want char*.
util::SecretBuffer c_string(const util::SecretBuffer& s) {
  util::SecretBuffer out(s.size() + 1);
  if (!s.empty())
    std::memcpy(out.data(), s.data(), s.size());
  out.data()[s.size()] = 0;
  return out;
}

std::string upper_hex(const unsigned char* p, std::size_t n) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    s += kHex[p[i] >> 4];
    s += kHex[p[i] & 0xf];
  }
  return s;
}

std::string name_text(const X509_NAME* name) {
  Bio b = new_mem_bio();
  X509_NAME_print_ex(b.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  return bio_string(b.get());
}

std::int64_t time_of(const ASN1_TIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1)
    return 0;
  return static_cast<std::int64_t>(timegm(&tm));
}

std::string algorithm_of(EVP_PKEY* pkey) {
  int id = EVP_PKEY_get_base_id(pkey);
  if (id == EVP_PKEY_RSA)
    return "RSA-" + std::to_string(EVP_PKEY_get_bits(pkey));
  if (id == EVP_PKEY_EC) {
    char group[64] = {0};
    size_t len = 0;
    if (EVP_PKEY_get_group_name(pkey, group, sizeof group, &len) == 1) {
      const char* nist = EC_curve_nid2nist(OBJ_sn2nid(group));
      return std::string("EC ") + (nist != nullptr ? nist : group);
    }
    return "EC";
  }
  const char* name = OBJ_nid2sn(id);
  return name != nullptr ? name : "unknown";
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

CertInfo info_of(X509* cert) {
  CertInfo info;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest(cert, EVP_sha256(), md, &n) == 1)
    info.fingerprint = upper_hex(md, n);
  EVP_PKEY* pub = X509_get0_pubkey(cert);
  info.algorithm = pub != nullptr ? algorithm_of(pub) : "unknown";
  info.subject = name_text(X509_get_subject_name(cert));
  info.issuer = name_text(X509_get_issuer_name(cert));
  Bn serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  if (serial) {
    char* hex = BN_bn2hex(serial.get());
    info.serial = hex != nullptr ? hex : "";
    OPENSSL_free(hex);
  }
  info.not_before = time_of(X509_get0_notBefore(cert));
  info.not_after = time_of(X509_get0_notAfter(cert));
  STACK_OF(OPENSSL_STRING)* emails = X509_get1_email(cert);
  for (int i = 0; i < sk_OPENSSL_STRING_num(emails); ++i) {
    auto e = lower(sk_OPENSSL_STRING_value(emails, i));
    if (std::find(info.emails.begin(), info.emails.end(), e) == info.emails.end())
      info.emails.push_back(e);
  }
  X509_email_free(emails);
  return info;
}

std::string cert_pem(X509* cert) {
  Bio b = new_mem_bio();
  PEM_write_bio_X509(b.get(), cert);
  return bio_string(b.get());
}

// The private key as unencrypted PKCS#8 DER, straight into locked memory.
Result<util::SecretBuffer> to_pkcs8(EVP_PKEY* pkey) {
  P8 p8(EVP_PKEY2PKCS8(pkey));
  if (!p8)
    return ssl_error(Errc::crypto, "cannot encode the private key");
  int len = i2d_PKCS8_PRIV_KEY_INFO(p8.get(), nullptr);
  if (len <= 0)
    return ssl_error(Errc::crypto, "cannot encode the private key");
  util::SecretBuffer der(static_cast<std::size_t>(len));
  unsigned char* p = der.data();
  if (i2d_PKCS8_PRIV_KEY_INFO(p8.get(), &p) != len)
    return ssl_error(Errc::crypto, "cannot encode the private key");
  return der;
}

Result<PKey> from_pkcs8(const util::SecretBuffer& der) {
  ERR_clear_error();
  const unsigned char* p = der.data();
  P8 p8(d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, static_cast<long>(der.size())));
  if (!p8)
    return ssl_error(Errc::corrupt, "the stored private key is damaged");
  PKey pkey(EVP_PKCS82PKEY(p8.get()));
  if (!pkey)
    return ssl_error(Errc::corrupt, "the stored private key is damaged");
  return pkey;
}

// Every certificate in PEM text (or one DER certificate), in order.
Result<CertStack> read_certs(std::string_view data) {
  ERR_clear_error();
  CertStack certs(sk_X509_new_null());
  if (looks_like_pem(data)) {
    Bio b = mem_bio(data);
    for (;;) {
      X509* c = PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr);
      if (c == nullptr)
        break;
      sk_X509_push(certs.get(), c);
    }
    ERR_clear_error();  // the loop ends on "no start line"
  } else {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(data.data());
    X509* c = d2i_X509(nullptr, &p, static_cast<long>(data.size()));
    if (c != nullptr)
      sk_X509_push(certs.get(), c);
  }
  if (sk_X509_num(certs.get()) == 0)
    return make_error(Errc::invalid_argument, "no X.509 certificate found");
  return certs;
}

// Puts the certificate that matches pkey first and makes the material.
Result<SmimeMaterial> assemble(EVP_PKEY* pkey, X509* leaf, STACK_OF(X509) * others) {
  SmimeMaterial m;
  if (leaf == nullptr) {
    for (int i = 0; others != nullptr && i < sk_X509_num(others); ++i) {
      X509* c = sk_X509_value(others, i);
      if (X509_check_private_key(c, pkey) == 1) {
        leaf = c;
        break;
      }
    }
    ERR_clear_error();
  }
  if (leaf == nullptr)
    return make_error(Errc::invalid_argument, "no certificate in the file matches the private key");
  if (X509_check_private_key(leaf, pkey) != 1) {
    ERR_clear_error();
    return make_error(Errc::invalid_argument, "the certificate does not match the private key");
  }
  m.cert = info_of(leaf);
  m.chain_pem = cert_pem(leaf);
  for (int i = 0; others != nullptr && i < sk_X509_num(others); ++i) {
    X509* c = sk_X509_value(others, i);
    if (c != leaf && X509_cmp(c, leaf) != 0)
      m.chain_pem += cert_pem(c);
  }
  auto der = to_pkcs8(pkey);
  if (!der)
    return der.error();
  m.pkcs8_der = std::move(der).value();
  return m;
}

// OpenSSL 3 needs the legacy provider for PKCS#12 files from older tools (RC2-40).
void load_legacy_provider() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Loading any provider explicitly turns off the implicit default one: load both.
    (void)OSSL_PROVIDER_load(nullptr, "default");
    (void)OSSL_PROVIDER_load(nullptr, "legacy");
    ERR_clear_error();
  });
}

int pem_password_cb(char* buf, int size, int /*rwflag*/, void* u) {
  const auto* pass = static_cast<const util::SecretBuffer*>(u);
  if (pass == nullptr || pass->empty() || static_cast<int>(pass->size()) > size)
    return 0;
  std::memcpy(buf, pass->data(), pass->size());
  return static_cast<int>(pass->size());
}

Result<Cms> read_cms(std::string_view data) {
  ERR_clear_error();
  std::size_t start = 0;
  while (start < data.size() && std::isspace(static_cast<unsigned char>(data[start])))
    ++start;
  Bio b = mem_bio(data);
  CMS_ContentInfo* cms = nullptr;
  if (start < data.size() && static_cast<unsigned char>(data[start]) == 0x30) {
    cms = d2i_CMS_bio(b.get(), nullptr);
  } else if (data.substr(start).rfind("-----BEGIN", 0) == 0) {
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* der = nullptr;
    long len = 0;
    if (PEM_read_bio(b.get(), &name, &header, &der, &len) == 1) {
      const unsigned char* p = der;
      cms = d2i_CMS_ContentInfo(nullptr, &p, len);
    }
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(der);
  } else {
    BIO* content = nullptr;
    cms = SMIME_read_CMS(b.get(), &content);
    BIO_free(content);
  }
  if (cms == nullptr)
    return ssl_error(Errc::corrupt, "the data is not a readable CMS / S/MIME message");
  return Cms(cms);
}

Result<std::pair<PKey, CertStack>> key_and_chain(const util::SecretBuffer& pkcs8_der,
                                                 std::string_view chain_pem) {
  auto pkey = from_pkcs8(pkcs8_der);
  if (!pkey)
    return pkey.error();
  auto certs = read_certs(chain_pem);
  if (!certs)
    return make_error(Errc::corrupt, "the stored certificate chain is damaged");
  return std::make_pair(std::move(pkey).value(), std::move(certs).value());
}

// A new stack holding (a reference to) every certificate of chain after the first,
// the leaf: the intermediates to send along with it.
CertStack certs_after_leaf(STACK_OF(X509) * chain) {
  CertStack extra(sk_X509_new_null());
  for (int i = 1; i < sk_X509_num(chain); ++i) {
    X509* c = sk_X509_value(chain, i);
    X509_up_ref(c);
    sk_X509_push(extra.get(), c);
  }
  return extra;
}

}  // namespace

bool looks_like_pem(std::string_view data) {
  return data.find("-----BEGIN ") != std::string_view::npos;
}

Result<SmimeMaterial> parse_pkcs12(std::string_view der, const util::SecretBuffer& password) {
  ERR_clear_error();
  Bio b = mem_bio(der);
  P12 p12(d2i_PKCS12_bio(b.get(), nullptr));
  if (!p12) {
    ERR_clear_error();
    return make_error(Errc::corrupt, "the file is not a PKCS#12 file, or it is truncated");
  }
  auto pass = c_string(password);
  const char* pw = reinterpret_cast<const char*>(pass.data());
  if (PKCS12_mac_present(p12.get())) {
    bool ok = PKCS12_verify_mac(p12.get(), pw, static_cast<int>(password.size())) == 1;
    if (!ok && password.empty() && PKCS12_verify_mac(p12.get(), nullptr, 0) == 1) {
      ok = true;
      pw = nullptr;
    }
    ERR_clear_error();
    if (!ok)
      return make_error(Errc::wrong_passphrase, "the PKCS#12 password is wrong");
  }
  EVP_PKEY* raw_key = nullptr;
  X509* raw_cert = nullptr;
  STACK_OF(X509)* raw_ca = nullptr;
  if (PKCS12_parse(p12.get(), pw, &raw_key, &raw_cert, &raw_ca) != 1) {
    ERR_clear_error();
    load_legacy_provider();
    if (PKCS12_parse(p12.get(), pw, &raw_key, &raw_cert, &raw_ca) != 1)
      return ssl_error(Errc::corrupt, "the PKCS#12 file cannot be read");
  }
  PKey pkey(raw_key);
  X509Ptr cert(raw_cert);
  CertStack ca(raw_ca);
  if (!pkey)
    return make_error(Errc::invalid_argument, "the PKCS#12 file holds no private key");
  return assemble(pkey.get(), cert.get(), ca.get());
}

Result<SmimeMaterial> parse_pem(std::string_view pem, const util::SecretBuffer& passphrase) {
  ERR_clear_error();
  if (!looks_like_pem(pem))
    return make_error(Errc::invalid_argument, "the file is neither PKCS#12 nor PEM");
  bool encrypted = pem.find("ENCRYPTED") != std::string_view::npos;
  Bio b = mem_bio(pem);
  PKey pkey(PEM_read_bio_PrivateKey(b.get(), nullptr, pem_password_cb,
                                    const_cast<util::SecretBuffer*>(&passphrase)));
  if (!pkey) {
    bool has_key = pem.find("PRIVATE KEY-----") != std::string_view::npos;
    if (has_key && encrypted) {
      ERR_clear_error();
      return make_error(Errc::wrong_passphrase,
                        passphrase.empty() ? "the private key is encrypted: give its passphrase"
                                           : "the passphrase of the private key is wrong");
    }
    if (has_key)
      return ssl_error(Errc::corrupt, "the private key in the PEM file is damaged");
    ERR_clear_error();
    return make_error(Errc::invalid_argument, "the PEM file holds no private key");
  }
  auto certs = read_certs(pem);
  if (!certs)
    return make_error(Errc::invalid_argument, "the PEM file holds no certificate for the key");
  return assemble(pkey.get(), nullptr, certs->get());
}

Result<SmimeMaterial> generate(const std::string& name, const std::string& email,
                               SmimeAlgorithm algorithm, std::int64_t now, std::int64_t days,
                               WithCsr csr) {
  ERR_clear_error();
  PKey pkey(algorithm == SmimeAlgorithm::rsa3072
                ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(3072))
                : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!pkey)
    return ssl_error(Errc::crypto, "key generation failed");

  Name subject(X509_NAME_new());
  const std::string cn = name.empty() ? email : name;
  auto add = [&](const char* field, const std::string& value) {
    return X509_NAME_add_entry_by_txt(subject.get(), field, MBSTRING_UTF8,
                                      reinterpret_cast<const unsigned char*>(value.c_str()),
                                      static_cast<int>(value.size()), -1, 0) == 1;
  };
  if (!add("CN", cn) || !add("emailAddress", email))
    return ssl_error(Errc::invalid_argument, "the name or address cannot go in a certificate");

  const bool is_rsa = algorithm == SmimeAlgorithm::rsa3072;
  const char* key_usage = is_rsa ? "critical,digitalSignature,nonRepudiation,keyEncipherment"
                                 : "critical,digitalSignature,nonRepudiation,keyAgreement";
  // subjectAltName built directly, so that no address is parsed as config syntax.
  auto make_san = [&]() -> GENERAL_NAMES* {
    GENERAL_NAMES* gens = sk_GENERAL_NAME_new_null();
    GENERAL_NAME* gen = GENERAL_NAME_new();
    ASN1_IA5STRING* ia5 = ASN1_IA5STRING_new();
    ASN1_STRING_set(ia5, email.data(), static_cast<int>(email.size()));
    GENERAL_NAME_set0_value(gen, GEN_EMAIL, ia5);
    sk_GENERAL_NAME_push(gens, gen);
    return gens;
  };

  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  unsigned char serial_bytes[16];
  if (RAND_bytes(serial_bytes, sizeof serial_bytes) != 1)
    return ssl_error(Errc::crypto, "no randomness for the serial number");
  serial_bytes[0] &= 0x7f;
  serial_bytes[0] |= 0x01;
  Bn serial(BN_bin2bn(serial_bytes, sizeof serial_bytes, nullptr));
  BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get()));
  X509_set_subject_name(cert.get(), subject.get());
  X509_set_issuer_name(cert.get(), subject.get());
  ASN1_TIME_set(X509_getm_notBefore(cert.get()), static_cast<time_t>(now));
  ASN1_TIME_set(X509_getm_notAfter(cert.get()), static_cast<time_t>(now + days * 86400));
  X509_set_pubkey(cert.get(), pkey.get());
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert.get(), cert.get(), nullptr, nullptr, 0);
  const std::pair<int, const char*> exts[] = {
      {NID_basic_constraints, "critical,CA:FALSE"},
      {NID_key_usage, key_usage},
      {NID_ext_key_usage, "emailProtection"},
      {NID_subject_key_identifier, "hash"},
  };
  for (const auto& [nid, value] : exts) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
    if (ext == nullptr)
      return ssl_error(Errc::crypto, "cannot build certificate extension");
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  GENERAL_NAMES* san = make_san();
  X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, san, 0, X509V3_ADD_DEFAULT);
  GENERAL_NAMES_free(san);
  if (X509_sign(cert.get(), pkey.get(), EVP_sha256()) <= 0)
    return ssl_error(Errc::crypto, "cannot sign the certificate");

  auto m = assemble(pkey.get(), cert.get(), nullptr);
  if (!m)
    return m.error();

  if (csr == WithCsr::yes) {
    Req req(X509_REQ_new());
    X509_REQ_set_version(req.get(), 0);
    X509_REQ_set_subject_name(req.get(), subject.get());
    X509_REQ_set_pubkey(req.get(), pkey.get());
    STACK_OF(X509_EXTENSION)* req_exts = sk_X509_EXTENSION_new_null();
    X509V3_CTX rv3;
    X509V3_set_ctx_nodb(&rv3);
    X509V3_set_ctx(&rv3, nullptr, nullptr, req.get(), nullptr, 0);
    for (const auto& [nid, value] : exts) {
      if (nid == NID_subject_key_identifier)
        continue;
      X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &rv3, nid, value);
      if (ext != nullptr)
        sk_X509_EXTENSION_push(req_exts, ext);
    }
    GENERAL_NAMES* req_san = make_san();
    X509_EXTENSION* san_ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, req_san);
    GENERAL_NAMES_free(req_san);
    if (san_ext != nullptr)
      sk_X509_EXTENSION_push(req_exts, san_ext);
    X509_REQ_add_extensions(req.get(), req_exts);
    sk_X509_EXTENSION_pop_free(req_exts, X509_EXTENSION_free);
    if (X509_REQ_sign(req.get(), pkey.get(), EVP_sha256()) <= 0)
      return ssl_error(Errc::crypto, "cannot sign the certificate request");
    Bio out = new_mem_bio();
    PEM_write_bio_X509_REQ(out.get(), req.get());
    m->csr_pem = bio_string(out.get());
  }
  return m;
}

Result<PublicCertificate> parse_public_certificate(std::string_view data) {
  if (looks_like_pem(data)) {
    if (data.find("PRIVATE KEY-----") != std::string_view::npos)
      return make_error(Errc::invalid_argument,
                        "the file holds a private key: only certificates are taken (nothing "
                        "was imported)");
  } else {
    ERR_clear_error();
    const unsigned char* p = reinterpret_cast<const unsigned char*>(data.data());
    P12 p12(d2i_PKCS12(nullptr, &p, static_cast<long>(data.size())));
    ERR_clear_error();
    if (p12)
      return make_error(Errc::invalid_argument,
                        "the file is PKCS#12, which holds a private key: give the certificate "
                        "alone (PEM or DER); nothing was imported");
  }
  auto certs = read_certs(data);
  if (!certs)
    return make_error(Errc::invalid_argument,
                      "the data is neither an OpenPGP key nor an X.509 certificate");
  PublicCertificate out;
  X509* leaf = sk_X509_value(certs->get(), 0);
  out.cert = info_of(leaf);
  for (int i = 0; i < sk_X509_num(certs->get()); ++i)
    out.chain_pem += cert_pem(sk_X509_value(certs->get(), i));
  Store store(X509_STORE_new());
  X509_STORE_set_default_paths(store.get());
  CertStack rest = certs_after_leaf(certs->get());
  StoreCtx sctx(X509_STORE_CTX_new());
  if (sctx && X509_STORE_CTX_init(sctx.get(), store.get(), leaf, rest.get()) == 1) {
    X509_STORE_CTX_set_purpose(sctx.get(), X509_PURPOSE_SMIME_ENCRYPT);
    out.chain_trusted = X509_verify_cert(sctx.get()) == 1;
  }
  ERR_clear_error();
  return out;
}

Result<CertInfo> cert_info(std::string_view chain_pem) {
  auto certs = read_certs(chain_pem);
  if (!certs)
    return make_error(Errc::corrupt, "the stored certificate is damaged");
  return info_of(sk_X509_value(certs->get(), 0));
}

Result<DecryptResult> decrypt(const util::SecretBuffer& pkcs8_der, std::string_view chain_pem,
                              std::string_view message) {
  auto cms = read_cms(message);
  if (!cms)
    return cms.error();
  int type = OBJ_obj2nid(CMS_get0_type(cms->get()));
  if (type != NID_pkcs7_enveloped && type != NID_id_smime_ct_authEnvelopedData) {
    const char* name = OBJ_nid2sn(type);
    return make_error(Errc::invalid_argument, std::string("not an encrypted S/MIME message (") +
                                                  (name != nullptr ? name : "unknown") + ")");
  }
  auto kc = key_and_chain(pkcs8_der, chain_pem);
  if (!kc)
    return kc.error();
  X509* leaf = sk_X509_value(kc->second.get(), 0);
  // Plaintext goes to a BIO whose buffer OpenSSL wipes when it is freed.
  Bio out(BIO_new(BIO_s_secmem()));
  if (!out)
    throw std::bad_alloc();
  ERR_clear_error();
  if (CMS_decrypt(cms->get(), kc->first.get(), leaf, nullptr, out.get(), 0) != 1) {
    unsigned long e = ERR_peek_last_error();
    if (ERR_GET_REASON(e) == CMS_R_NO_MATCHING_RECIPIENT) {
      ERR_clear_error();
      return make_error(Errc::crypto,
                        "the message is " + std::string(kNotForKeyWords) + " this certificate");
    }
    return ssl_error(Errc::crypto, "S/MIME decryption failed: the message is " +
                                       std::string(kDamagedWords) + ", or the key is wrong");
  }
  char* p = nullptr;
  long n = BIO_get_mem_data(out.get(), &p);
  DecryptResult result;
  result.plaintext = util::SecretBuffer::copy_of(
      std::string_view(p != nullptr ? p : "", n > 0 ? static_cast<std::size_t>(n) : 0));
  result.integrity_protected = type == NID_id_smime_ct_authEnvelopedData;
  result.cipher = type == NID_id_smime_ct_authEnvelopedData ? "authEnvelopedData" : "envelopedData";
  return result;
}

Result<SignResult> sign(const util::SecretBuffer& pkcs8_der, std::string_view chain_pem,
                        std::string_view data) {
  auto kc = key_and_chain(pkcs8_der, chain_pem);
  if (!kc)
    return kc.error();
  ERR_clear_error();
  X509* leaf = sk_X509_value(kc->second.get(), 0);
  CertStack extra = certs_after_leaf(kc->second.get());
  const unsigned int flags = CMS_DETACHED | CMS_BINARY | CMS_PARTIAL;
  Cms cms(CMS_sign(nullptr, nullptr, extra.get(), nullptr, flags));
  if (!cms || CMS_add1_signer(cms.get(), leaf, kc->first.get(), EVP_sha256(), flags) == nullptr)
    return ssl_error(Errc::crypto, "cannot set up the S/MIME signature");
  Bio in = mem_bio(data);
  if (CMS_final(cms.get(), in.get(), nullptr, flags) != 1)
    return ssl_error(Errc::crypto, "S/MIME signing failed");
  Bio out = new_mem_bio();
  if (i2d_CMS_bio(out.get(), cms.get()) != 1)
    return ssl_error(Errc::crypto, "cannot encode the S/MIME signature");
  return SignResult{bio_string(out.get()), "sha-256"};
}

Result<VerifyResult> verify(std::string_view signed_data, std::string_view signature) {
  auto cms = read_cms(signature);
  if (!cms)
    return cms.error();
  if (OBJ_obj2nid(CMS_get0_type(cms->get())) != NID_pkcs7_signed)
    return make_error(Errc::invalid_argument, "not an S/MIME signature (no SignedData)");
  Store store(X509_STORE_new());
  X509_STORE_set_default_paths(store.get());
  Bio in = mem_bio(signed_data);
  Bio out = new_mem_bio();
  ERR_clear_error();
  // First the signature itself; the signer's chain is judged separately below, so a
  // good signature by an unknown CA shows as good but untrusted.
  const unsigned int flags = CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY;
  bool good = CMS_verify(cms->get(), nullptr, store.get(), signed_data.empty() ? nullptr : in.get(),
                         out.get(), flags) == 1;
  std::string why = good ? "" : openssl_errors();
  VerifyResult result;
  if (good && signed_data.empty())
    result.content = bio_string(out.get());
  CMS_set1_signers_certs(cms->get(), nullptr, 0);
  ERR_clear_error();
  CertStack all(CMS_get1_certs(cms->get()));
  STACK_OF(CMS_SignerInfo)* infos = CMS_get0_SignerInfos(cms->get());
  for (int i = 0; i < sk_CMS_SignerInfo_num(infos); ++i) {
    CMS_SignerInfo* si = sk_CMS_SignerInfo_value(infos, i);
    SignatureInfo sig;
    X509* signer = nullptr;
    CMS_SignerInfo_get0_algs(si, nullptr, &signer, nullptr, nullptr);
    sig.status = good ? SignatureStatus::good : SignatureStatus::bad;
    sig.detail = good ? "signature valid" : why;
    int attr = CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1);
    if (attr >= 0) {
      ASN1_TYPE* t = X509_ATTRIBUTE_get0_type(CMS_signed_get_attr(si, attr), 0);
      if (t != nullptr && (t->type == V_ASN1_UTCTIME || t->type == V_ASN1_GENERALIZEDTIME))
        sig.created = time_of(t->value.utctime);
    }
    if (signer == nullptr) {
      sig.status = good ? SignatureStatus::no_public_key : sig.status;
      result.signatures.push_back(std::move(sig));
      continue;
    }
    CertInfo ci = info_of(signer);
    sig.certificate = cert_pem(signer);
    sig.fingerprint = ci.fingerprint;
    sig.signer = ci.subject;
    sig.emails = ci.emails;
    StoreCtx sctx(X509_STORE_CTX_new());
    if (sctx && X509_STORE_CTX_init(sctx.get(), store.get(), signer, all.get()) == 1) {
      X509_STORE_CTX_set_purpose(sctx.get(), X509_PURPOSE_SMIME_SIGN);
      bool chain_ok = X509_verify_cert(sctx.get()) == 1;
      int err = X509_STORE_CTX_get_error(sctx.get());
      sig.trusted = good && chain_ok;
      if (chain_ok) {
        sig.certificate.clear();
        STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(sctx.get());
        for (int c = 0; c < sk_X509_num(chain); ++c)
          sig.certificate += cert_pem(sk_X509_value(chain, c));
      }
      if (good && !chain_ok) {
        if (err == X509_V_ERR_CERT_HAS_EXPIRED)
          sig.status = SignatureStatus::key_expired;
        else if (err == X509_V_ERR_CERT_REVOKED)
          sig.status = SignatureStatus::key_revoked;
        sig.detail = std::string("signature valid; certificate not trusted: ") +
                     X509_verify_cert_error_string(err);
      }
    }
    ERR_clear_error();
    result.signatures.push_back(std::move(sig));
  }
  if (result.signatures.empty())
    return make_error(Errc::invalid_argument, "the S/MIME signature has no signer");
  return result;
}

Result<std::string> encrypt(const std::vector<std::string>& recipient_certs,
                            std::string_view plaintext, SmimeCipher cipher) {
  if (recipient_certs.empty())
    return make_error(Errc::invalid_argument, "no recipient to encrypt to");
  CertStack certs(sk_X509_new_null());
  for (const auto& pem : recipient_certs) {
    auto one = read_certs(pem);
    if (!one)
      return make_error(Errc::invalid_argument, "a recipient certificate cannot be read");
    X509* leaf = sk_X509_value(one->get(), 0);
    X509_up_ref(leaf);
    sk_X509_push(certs.get(), leaf);
  }
  ERR_clear_error();
  Bio in = mem_bio(plaintext);
  // An AEAD cipher makes OpenSSL build AuthEnvelopedData (RFC 5083).
  const EVP_CIPHER* c = cipher == SmimeCipher::aes256_gcm ? EVP_aes_256_gcm() : EVP_aes_256_cbc();
  Cms cms(CMS_encrypt(certs.get(), in.get(), c, CMS_BINARY));
  if (!cms)
    return ssl_error(Errc::crypto, "S/MIME encryption failed");
  Bio out = new_mem_bio();
  if (i2d_CMS_bio(out.get(), cms.get()) != 1)
    return ssl_error(Errc::crypto, "cannot encode the S/MIME message");
  return bio_string(out.get());
}

Result<std::string> export_pkcs12(const util::SecretBuffer& pkcs8_der, std::string_view chain_pem,
                                  const util::SecretBuffer& password) {
  auto kc = key_and_chain(pkcs8_der, chain_pem);
  if (!kc)
    return kc.error();
  ERR_clear_error();
  X509* leaf = sk_X509_value(kc->second.get(), 0);
  CertStack extra = certs_after_leaf(kc->second.get());
  auto pass = c_string(password);
  // nid 0 / iter 0: OpenSSL 3's defaults, AES-256-CBC with PBKDF2 and a SHA-256 MAC.
  P12 p12(PKCS12_create(reinterpret_cast<const char*>(pass.data()), nullptr, kc->first.get(), leaf,
                        extra.get(), 0, 0, 0, 0, 0));
  if (!p12)
    return ssl_error(Errc::crypto, "cannot build the PKCS#12 file");
  Bio out = new_mem_bio();
  if (i2d_PKCS12_bio(out.get(), p12.get()) != 1)
    return ssl_error(Errc::crypto, "cannot encode the PKCS#12 file");
  return bio_string(out.get());
}

}  // namespace wmk::keys::detail
