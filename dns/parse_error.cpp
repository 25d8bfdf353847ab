#include "dns/parse_error.h"

namespace dnsproxy::dns {

std::string_view to_string(ParseError error) noexcept {
  switch (error) {
    case ParseError::kShorterThanHeader:
      return "shorter_than_header";
    case ParseError::kLongerThanMaximum:
      return "longer_than_maximum";
    case ParseError::kQdcountNotOne:
      return "qdcount_not_one";
    case ParseError::kOpcodeNotQuery:
      return "opcode_not_query";
    case ParseError::kNotAQuery:
      return "not_a_query";
    case ParseError::kNotAResponse:
      return "not_a_response";
    case ParseError::kTrailingBytes:
      return "trailing_bytes";
    case ParseError::kNameTruncated:
      return "name_truncated";
    case ParseError::kBadLabelLength:
      return "bad_label_length";
    case ParseError::kNameTooLong:
      return "name_too_long";
    case ParseError::kPointerIntoHeader:
      return "pointer_into_header";
    case ParseError::kForwardPointer:
      return "forward_pointer";
    case ParseError::kPointerLoop:
      return "pointer_loop";
    case ParseError::kTooManyPointers:
      return "too_many_pointers";
    case ParseError::kQuestionTruncated:
      return "question_truncated";
    case ParseError::kRecordTruncated:
      return "record_truncated";
    case ParseError::kBadAddressLength:
      return "bad_address_length";
    case ParseError::kBadCnameRdata:
      return "bad_cname_rdata";
    case ParseError::kOptNotInAdditional:
      return "opt_not_in_additional";
    case ParseError::kOptOwnerNotRoot:
      return "opt_owner_not_root";
    case ParseError::kDuplicateOpt:
      return "duplicate_opt";
    case ParseError::kCount:
      break;
  }
  return "unknown";
}

}  // namespace dnsproxy::dns
