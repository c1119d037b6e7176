#include <gtest/gtest.h>

#include "core/crypto/aead.h"
#include "core/crypto/kdf.h"
#include "core/util/encoding.h"

namespace wmk::crypto {

namespace {
const KdfParams kFast{64, 1, 1};
}

TEST(Aead, RoundTripsAndBindsAssociatedData) {
  auto key = util::SecretBuffer::random(32);
  auto blob = seal(key, util::as_bytes("key secret"), "fpr:ABC");
  auto back = open(key, blob, "fpr:ABC");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->view(), "key secret");
  EXPECT_EQ(open(key, blob, "fpr:ABD").code(), Errc::crypto);
  auto other = util::SecretBuffer::random(32);
  EXPECT_EQ(open(other, blob, "fpr:ABC").code(), Errc::crypto);
  blob[5] ^= 1;
  EXPECT_EQ(open(key, blob, "fpr:ABC").code(), Errc::crypto);
  EXPECT_EQ(open(key, std::vector<std::uint8_t>{1, 2}, "x").code(), Errc::corrupt);
}

TEST(Aead, CiphertextDoesNotContainPlaintext) {
  auto key = util::SecretBuffer::random(32);
  std::string secret = "SUPER-SECRET-MARKER-0123456789";
  auto blob = seal(key, util::as_bytes(secret), "");
  std::string s(blob.begin(), blob.end());
  EXPECT_EQ(s.find("SUPER-SECRET"), std::string::npos);
}

TEST(Kdf, DeriveIsDeterministicPerSaltAndPassphrase) {
  auto pass = util::SecretBuffer::copy_of(std::string_view("correct horse"));
  std::vector<std::uint8_t> salt(16, 7), salt2(16, 8);
  auto a = derive_key(pass, salt, kFast);
  auto b = derive_key(pass, salt, kFast);
  auto c = derive_key(pass, salt2, kFast);
  EXPECT_EQ(a.size(), 32u);
  EXPECT_TRUE(a.equals(b));
  EXPECT_FALSE(a.equals(c));
}

TEST(Kdf, PasswordHashVerifiesOnlyTheRightPassword) {
  auto pw = util::SecretBuffer::copy_of(std::string_view("hunter2"));
  auto phc = hash_password(pw, kFast);
  EXPECT_EQ(phc.rfind("$argon2id$v=19$m=64,t=1,p=1$", 0), 0u) << phc;
  EXPECT_TRUE(verify_password(pw, phc));
  EXPECT_FALSE(verify_password(util::SecretBuffer::copy_of(std::string_view("hunter3")), phc));
  EXPECT_FALSE(verify_password(pw, "$argon2i$garbage"));
  EXPECT_FALSE(verify_password(pw, ""));
}

TEST(Kdf, ParamsRoundTrip) {
  KdfParams p{1024, 2, 1};
  auto back = KdfParams::parse(p.to_string());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->memory_kib, 1024u);
  EXPECT_FALSE(KdfParams::parse("m=1,t=1,p=1"));
  EXPECT_FALSE(KdfParams::parse("m=64,t=1,p=1,x"));
}

}  // namespace wmk::crypto
