function __ru-tok_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __ru-tok_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __ru-tok_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __ru-tok_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __ru-tok_parse_tokens -S
    set -l unparsed_tokens (__ru-tok_tokens -pc)
    switch $unparsed_tokens[1]
    case 'ru-tok'
        __ru-tok_parse_subcommand -r 1 'tsv' 'jsonl' 'id-field=' 'text-field=' '0' 'lossy' 'tokenizer=' 'model=' 'prompt=' 'prompt-text=' 'no-prompt' 'max-length=' 'format=' 'decode' 'keep-special-tokens' 'split-special-tokens' 'threads=' 'o/output=' 'force' 'v/verbose' 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'help'
            __ru-tok_parse_subcommand -r 1 'version'
        end
    end
end

function __ru-tok_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __ru-tok_parse_subcommand -S -a positional_count
    argparse -s r -- $argv
    set -l option_specs $argv[2..]
    set -l is_repeating_positional $_flag_r
    set -el _flag_r
    set -a commands $unparsed_tokens[1]
    set positional_index 0
    while true
        set -e unparsed_tokens[1]
        argparse -sn "$commands" $option_specs -- $unparsed_tokens 2> /dev/null
        set unparsed_tokens $argv
        set positional_index (math $positional_index + 1)
        for non_repeating_flag_or_option in $non_repeating_flags_or_options
            if set -ql "_flag_$(string replace -a - _ -- $non_repeating_flag_or_option)"
                set non_repeating_flags_or_options_absent 1
                break
            end
        end
        test (count $unparsed_tokens) -eq 0 -o \( -z "$is_repeating_positional" -a "$positional_index" -gt "$positional_count" \) && break
    end
end

function __ru-tok_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __ru-tok_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__ru-tok_tokens -p)
    if test -z "$(__ru-tok_tokens -t)"
        set -l index (count (__ru-tok_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'ru-tok' -f
complete -c 'ru-tok' -n '__ru-tok_should_offer_completions_for_flags_or_options "ru-tok" tsv' -l 'tsv' -d 'Input lines are id<TAB>text.'
complete -c 'ru-tok' -n '__ru-tok_should_offer_completions_for_flags_or_options "ru-tok" jsonl' -l 'jsonl' -d 'Input lines are JSON objects.'
complete -c 'ru-tok' -n '__ru-tok_should_offer_completions_for_flags_or_options "ru-tok" id-field' -l 'id-field' -d 'The JSONL field with the record id.' -rfka ''
complete -c 'ru-tok' -n '__ru-tok_should_offer_completions_for_flags_or_options "ru-tok" text-field' -l 'text-field' -d 'The JSONL field with the text.' -rfka ''
complete -c 'ru-tok' -n '__ru-tok_should_offer_completions_for_flags_or_options "ru-tok" 0' -s '0' -d 'Records end with NUL instead of newline (text may contain newlines).'
complete -c 'ru-tok' -n '__ru-tok_should_offer_completions_for_flags_or_options "ru-tok" lossy' -l 'lossy' -d 'Replace invalid UTF-8 with U+FFFD instead of stopping.'
complete -c 'ru-tok' -n '__ru-tok_should_offer_completions_for_flags_or_options "ru-tok" tokenizer' -l 'tokenizer' -d 'A tokenizer.json to use as it is (no prompt).' -rfka ''
complete -c 'ru-tok' -n '__ru-tok_should_offer_completions_for_flags_or_options "ru-tok" model' -l 'model' -d 'A model folder (sentence-transformers layout), or a hub id org/name[@revision] found in the Hugging Face cache or downloaded into it. Default: $RU_EMBED_MODEL, else deepvk/USER-base (see docs/MODELS.md).' -rfka ''
complete -c 'ru-tok' -n '__ru-tok_should_offer_completions_for_flags_or_options "ru-tok" prompt' -l 'prompt' -d 'Use the model\'s prompt of this name (e.g. query, passage).' -rfka ''
complete -c 'ru-tok' -n '__ru-tok_should_offer_completions_for_flags_or_options "ru-tok" prompt-text' -l 'prompt-text' -d 'Put this text in front of every record.' -rfka ''
complete -c 'ru-tok' -n '__ru-tok_should_offer_completions_for_flags_or_options "ru-tok" no-prompt' -l 'no-prompt' -d 'Use no prompt, not even the model\'s default.'
complete -c 'ru-tok' -n '__ru-tok_should_offer_completions_for_flags_or_options "ru-tok" max-length' -l 'max-length' -d 'The most tokens per record, special tokens included; 0 for no limit (default: the model\'s max_seq_length, the tokenizer\'s truncation, or tokenizer_config.json\'s model_max_length).' -rfka ''
complete -c 'ru-tok' -n '__ru-tok_should_offer_completions_for_flags_or_options "ru-tok" format' -l 'format' -d 'Output: stream (binary token stream for ru-vec), ids, tokens or jsonl.' -rfka 'stream ids tokens jsonl'
complete -c 'ru-tok' -n '__ru-tok_should_offer_completions_for_flags_or_options "ru-tok" decode' -l 'decode' -d 'Turn ids back into text: the input is a token stream (writes id<TAB>text) or lines of space-separated ids (as --format ids writes).'
complete -c 'ru-tok' -n '__ru-tok_should_offer_completions_for_flags_or_options "ru-tok" keep-special-tokens' -l 'keep-special-tokens' -d 'With --decode: keep special tokens in the text.'
complete -c 'ru-tok' -n '__ru-tok_should_offer_completions_for_flags_or_options "ru-tok" split-special-tokens' -l 'split-special-tokens' -d 'Treat special tokens written in the text as plain text.'
complete -c 'ru-tok' -n '__ru-tok_should_offer_completions_for_flags_or_options "ru-tok" threads' -l 'threads' -d 'Threads (default: all cores, shared out between the ru-* tools running at once, e.g. under xargs -P or make -j; see README).' -rfka ''
complete -c 'ru-tok' -n '__ru-tok_should_offer_completions_for_flags_or_options "ru-tok" o output' -l 'output' -s 'o' -d 'Write to this file (default: standard output). It appears whole when the tool succeeds, and is left as it was when the tool fails.' -rfka ''
complete -c 'ru-tok' -n '__ru-tok_should_offer_completions_for_flags_or_options "ru-tok" force' -l 'force' -d 'Write binary output even to a terminal.'
complete -c 'ru-tok' -n '__ru-tok_should_offer_completions_for_flags_or_options "ru-tok" v verbose' -l 'verbose' -s 'v' -d 'Print a summary on standard error at the end (and where the model was found).'
complete -c 'ru-tok' -n '__ru-tok_should_offer_completions_for_flags_or_options "ru-tok" version' -l 'version' -d 'Show the version.'
complete -c 'ru-tok' -n '__ru-tok_should_offer_completions_for_flags_or_options "ru-tok" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ru-tok' -n '__ru-tok_should_offer_completions_for_positional "ru-tok" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'ru-tok' -n '__ru-tok_should_offer_completions_for_flags_or_options "ru-tok help" version' -l 'version' -d 'Show the version.'
