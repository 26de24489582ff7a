#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| certscope_query_api::fuzz::search_params(data));
