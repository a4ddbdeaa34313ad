"""Line-classifier weights of the fast HTML extractor (r1data.sources.html_fast).

Written by `python bench/extraction_quality.py --train` from the 181 pages of the ScrapingHub
article-extraction benchmark (weighted L2 logistic regression, Newton's method). Do not edit by hand;
a policy pins its output through these numbers: retrain only with a new policy version."""

FEATURES_VERSION = 1
THRESHOLD = 0.5
WEIGHTS = [
    -0.6381409000103072,  # bias,
    0.6568016410485357,  # log_words,
    0.1493507961564949,  # log_chars,
    1.0330070308404975,  # end_punct,
    -0.34946170261974,  # cap_frac,
    -0.011237548961899782,  # digit_frac,
    0.02499503377459665,  # avg_word_len,
    0.37819649362008106,  # indented,
    0.16147595905678788,  # short,
    -0.05463969000315083,  # very_short,
    -0.40819323462228335,  # kw_share,
    -0.5079545021510959,  # kw_subscribe,
    -0.6955705859542048,  # kw_advert,
    -0.12111567717500112,  # kw_media,
    -0.05946514060859495,  # kw_related,
    -0.1997289788869,  # kw_comment,
    -0.7437618569418458,  # kw_legal,
    -0.12894550797293536,  # kw_byline,
    0.015394298482695377,  # kw_date,
    -0.25734247271192245,  # kw_url,
    -0.17763053635665166,  # rel_pos,
    -0.6058726538760955,  # before_core,
    -0.8175115092948392,  # after_core,
    -0.13653392544312865,  # chars_before_frac,
    0.023178881825244673,  # chars_after_frac,
    0.11185835697368525,  # dup_line,
    0.13582374161674768,  # prev_log_words,
    -0.24330384527886403,  # prev_end_punct,
    0.10739450650508521,  # next_log_words,
    -0.20624926663995907,  # next_end_punct,
    0.018204049352863405,  # prev_empty,
    0.22032024671280565,  # next_empty,
    0.3236407955627483,  # page_log_lines,
    -0.0769570209809265,  # page_long_frac,
]
