# Warm R runtime for multiplt's batch runner (the line protocol is documented in runner.py).
#
# The server pays R's start-up once, then forks one child per program
# (parallel:::mcfork), so every program starts from a pristine copy of the
# server's state and nothing a program does can reach the next one. The
# server itself never evaluates user code.
#
# The child mimics `Rscript prog.r`: it evaluates the file one top-level
# expression at a time, auto-prints visible values, prints deferred warnings
# after each expression, and on an error prints R's own message format
# ("Error in f() : ...", "Calls: ...", "Execution halted") and exits with
# status 1; quit()/q() keep their status. Syntax errors are reported the way
# R's read-eval loop reports them ("Error: unexpected ... in ...") after the
# complete expressions before them have run.
#
# Everything lives in one local() whose enclosure is the base environment, so
# the global environment stays empty and a program's definitions (say, its own
# `cat`) cannot change how the server formats its output.

local(envir = new.env(parent = baseenv()), {
  LONGWARN <- 75L # R's line-width threshold for breaking error/warning lines
  EVAL_CALL <- quote(eval(expr, .GlobalEnv)) # the frame every top-level expression runs in
  STOP_LIKE <- c("stop", "warning", "suppressWarnings", ".signalSimpleWarning")
  NO_STATUS <- -9L # reported when a child dies without saying how (killed, crashed)

  # --- start-up: recreate what Rscript's start-up does and --vanilla skips ---

  mimic_rscript_startup <- function() {
    site_env <- file.path(R.home("etc"), "Renviron.site")
    if (file.exists(site_env)) readRenviron(site_env)
    Sys.unsetenv(c("R_ENVIRON", "R_ENVIRON_USER", "R_PROFILE", "R_PROFILE_USER"))
    refresh_site_library()
    site_profile <- file.path(R.home("etc"), "Rprofile.site")
    if (file.exists(site_profile)) try(sys.source(site_profile, envir = baseenv()), silent = TRUE)
    for (pkg in getOption("defaultPackages")) {
      if (!paste0("package:", pkg) %in% search()) library(pkg, character.only = TRUE)
    }
  }

  # .Library.site is computed from R_LIBS_SITE at start-up, before Renviron.site was read here.
  refresh_site_library <- function() {
    site <- strsplit(Sys.getenv("R_LIBS_SITE"), ":", fixed = TRUE)[[1L]]
    site <- site[nzchar(site) & dir.exists(site)]
    base <- baseenv()
    if (bindingIsLocked(".Library.site", base)) unlockBinding(".Library.site", base)
    assign(".Library.site", normalizePath(site), envir = base)
    lockBinding(".Library.site", base)
    invisible(.libPaths(.libPaths()))
  }

  # The server's own functions are byte-compiled once, here: left to the JIT, which compiles
  # a closure on its second call, every child would compile them again (~40 ms a program).
  compile_functions <- function(env) {
    for (name in ls(env)) {
      fun <- get(name, envir = env)
      if (is.function(fun) && !is.primitive(fun)) assign(name, compiler::cmpfun(fun), envir = env)
    }
  }

  # --- the child: run one program the way Rscript would ---

  keep <- new.env() # connections that hold the child's fds 0-2 (never garbage-collected)

  # Point fds 0, 1 and 2 at /dev/null and the output files: closing an fd and opening a
  # file reuses the lowest free number. Subprocesses (system()) then write to the files too,
  # and nothing the program prints can reach the server's protocol pipe.
  redirect_standard_fds <- function(out_path, err_path) {
    parallel:::closeFD(0L)
    keep$stdin <- file("/dev/null", "r")
    parallel:::closeFD(1L)
    keep$stdout <- file(out_path, "a") # append: writers sharing the file never overwrite
    parallel:::closeFD(2L)
    keep$stderr <- file(err_path, "a")
  }

  report_status <- function(status) {
    try(parallel:::sendMaster(as.integer(status), FALSE), silent = TRUE)
  }

  exit_status <- function(status) {
    status <- suppressWarnings(as.integer(status))[1L]
    if (is.na(status)) 0L else status %% 256L
  }

  # quit()/q() end the child through finish(), which tells the server the status.
  install_quit_hooks <- function() {
    hook <- function(save = "default", status = 0, runLast = TRUE) {
      finish(exit_status(status), runLast)
    }
    for (env in list(baseenv(), .BaseNamespaceEnv)) {
      for (name in c("quit", "q")) {
        unlockBinding(name, env)
        assign(name, hook, envir = env)
        lockBinding(name, env)
      }
    }
  }

  # What R's own exit (R_CleanUp) would do, minus its `sh -c "rm -Rf tempdir"`, which alone
  # costs more than the rest of a small program: .Last, close graphics devices, remove the
  # session temp dir, flush and close connections; then exit without running atexit hooks.
  finish <- function(status, run_last) {
    if (run_last && !run_dot_last()) status <- 1L
    report_status(status)
    try(if (grDevices::dev.cur() > 1L) grDevices::graphics.off(), silent = TRUE)
    unlink(tempdir(), recursive = TRUE)
    flush_connections()
    parallel:::mcexit(status)
  }

  # mcexit() skips C stdio's exit-time flush, so flush whatever the program left open.
  flush_connections <- function() {
    for (n in getAllConnections()) {
      con <- getConnection(n)
      try(if (isOpen(con, "w")) flush(con), silent = TRUE)
    }
  }

  run_dot_last <- function() {
    last <- get0(".Last", envir = .GlobalEnv, inherits = TRUE)
    if (!is.function(last) || is.primitive(last)) return(TRUE)
    run_toplevel(quote(.Last()), autoprint = FALSE)
  }

  child_main <- function(program, scratch, out_path, err_path, jit_level, stdin_con) {
    redirect_standard_fds(out_path, err_path)
    close(stdin_con)
    compiler::enableJIT(jit_level) # mcfork switches the JIT off in children
    move_home(scratch)
    invisible(tempdir(check = TRUE)) # the server deleted its own, so this makes a fresh one here
    setwd(scratch)
    install_quit_hooks()
    status <- run_program(program)
    finish(status, run_last = status == 0L)
  }

  # Rscript would have started in the scratch dir with HOME and TMPDIR there: variables
  # derived from the server's HOME (R_LIBS_USER, PWD) move with it.
  move_home <- function(scratch) {
    home <- Sys.getenv("HOME")
    if (nzchar(home)) {
      vars <- Sys.getenv()
      moved <- gsub(home, scratch, vars, fixed = TRUE)
      changed <- moved != vars
      if (any(changed)) do.call(Sys.setenv, as.list(moved[changed]))
    }
    Sys.setenv(HOME = scratch, TMPDIR = scratch, PWD = scratch)
  }

  run_program <- function(path) {
    text <- paste(readLines(path, warn = FALSE), collapse = "\n")
    program <- parse_like_repl(text)
    for (expr in program$exprs) {
      if (!run_toplevel(expr)) return(1L)
    }
    if (is.null(program$error)) return(0L)
    cat("Error: ", program$error, "\nExecution halted\n", sep = "", file = stderr())
    1L
  }

  # --- top-level evaluation, errors and warnings in R's formats ---

  run_toplevel <- function(expr, autoprint = TRUE) {
    pending <- list()
    collect_warning <- function(w) {
      level <- suppressWarnings(as.integer(getOption("warn", 0L)))[1L]
      if (is.na(level) || level < 0L || level >= 2L) return() # R drops or escalates these itself
      call <- toplevel_call(conditionCall(w))
      if (level == 1L) {
        cat(format_immediate_warning(call, conditionMessage(w)), file = stderr())
      } else if (length(pending) < getOption("nwarnings", 50L)) {
        pending[[length(pending) + 1L]] <<- list(call = call, message = conditionMessage(w))
      } else {
        pending$overflow <<- TRUE
      }
      invokeRestart("muffleWarning")
    }
    # R prints the error before unwinding (so before on.exit output), and "Execution halted"
    # after; if the stack is too deep to format it here, it is printed after unwinding.
    reported <- FALSE
    report_error <- function(e, calls = sys.calls()) {
      if (isTRUE(getOption("show.error.messages", TRUE))) {
        cat(format_error(e, calls), file = stderr())
        if (length(pending)) {
          cat("In addition: ", format_warnings(pending), sep = "", file = stderr())
        }
      }
      reported <<- TRUE
    }
    halt <- function(e) {
      if (!reported) report_error(e, list())
      cat("Execution halted\n", file = stderr())
      FALSE
    }
    ok <- withRestarts(
      tryCatch(
        withCallingHandlers(
          {
            value <- withVisible(eval(expr, .GlobalEnv))
            if (autoprint && value$visible) print_value(value$value)
            TRUE
          },
          warning = collect_warning,
          error = report_error
        ),
        error = halt
      ),
      abort = function() {
        cat("Execution halted\n", file = stderr())
        FALSE
      }
    )
    if (ok && length(pending)) cat(format_warnings(pending), file = stderr())
    ok
  }

  # R's read-eval loop prints with base's print() (show() for S4), in a frame below globalenv
  # so that S3 methods the program defined are found.
  print_value <- function(value) {
    env <- new.env(parent = .GlobalEnv)
    assign("x", value, envir = env)
    printer <- if (isS4(value)) methods::show else base::print
    eval(as.call(list(printer, quote(x))), env)
  }

  toplevel_call <- function(call) if (identical(call, EVAL_CALL)) NULL else call

  deparse_call <- function(call) deparse(call, width.cutoff = 60L, nlines = 1L)[1L]

  first_line_width <- function(message) {
    line <- strsplit(message, "\n", fixed = TRUE)[[1L]][1L]
    if (is.na(line)) 0L else nchar(line, type = "w")
  }

  format_error <- function(e, calls) {
    message <- conditionMessage(e)
    call <- toplevel_call(conditionCall(e))
    end <- if (endsWith(message, "\n")) "" else "\n"
    if (is.null(call)) return(paste0("Error: ", message, end))
    dcall <- deparse_call(call)
    long <- 14L + nchar(dcall, type = "w") + first_line_width(message) > LONGWARN
    text <- paste0("Error in ", dcall, " : ", if (long) "\n  ", message, end)
    trace <- concise_traceback(program_frames(calls), call)
    if (nzchar(trace)) text <- paste0(text, "Calls: ", trace, "\n")
    text
  }

  # The program's own frames: those after our eval() and before the condition handlers.
  program_frames <- function(calls) {
    ours <- which(vapply(calls, identical, logical(1), EVAL_CALL))
    if (!length(ours)) return(list())
    frames <- calls[-seq_len(max(ours))]
    frames <- frames[-length(frames)] # the handler itself
    names <- vapply(frames, frame_name, character(1))
    handler <- match(".handleSimpleError", names)
    if (!is.na(handler)) names <- names[seq_len(handler - 1L)]
    names
  }

  frame_name <- function(call) {
    if (is.call(call) && is.symbol(call[[1L]])) as.character(call[[1L]]) else "<Anonymous>"
  }

  # R_ConciseTraceback: frames outside the outermost stop()/warning(), innermost last,
  # shortened with "..." past getOption("showNCalls") characters.
  concise_traceback <- function(names, call) {
    reset <- which(names %in% STOP_LIKE)
    if (length(reset)) names <- names[seq_len(min(reset) - 1L)]
    limit <- getOption("showNCalls", 50L)
    buf <- ""
    top <- ""
    too_many <- FALSE
    for (name in rev(names)) {
      if (too_many) {
        top <- name
      } else if (nchar(buf) > limit) {
        buf <- paste0("... ", buf)
        too_many <- TRUE
        top <- name
      } else {
        buf <- if (nzchar(buf)) paste0(name, " -> ", buf) else name
      }
    }
    if (too_many && nchar(top) < 50L) buf <- paste(top, buf)
    if (length(names) == 1L && is.call(call) && identical(buf, frame_name(call))) "" else buf
  }

  format_immediate_warning <- function(call, message) {
    if (is.null(call)) return(paste0("Warning: ", message, "\n"))
    dcall <- deparse_call(call)
    long <- 18L + nchar(dcall, type = "w") + first_line_width(message) > LONGWARN
    paste0("Warning in ", dcall, " :", if (long) "\n ", " ", message, "\n")
  }

  # PrintWarnings(): the block R prints after a top-level expression that warned.
  format_warnings <- function(pending) {
    overflow <- isTRUE(pending$overflow)
    pending$overflow <- NULL
    n <- length(pending)
    if (overflow || n > 10L) {
      nw <- getOption("nwarnings", 50L)
      if (overflow || n >= nw) {
        return(sprintf(
          "There were %d or more warnings (use warnings() to see the first %d)\n", nw, nw
        ))
      }
      return(sprintf("There were %d warnings (use warnings() to see them)\n", n))
    }
    if (n == 1L) return(paste0("Warning message:\n", format_warning(pending[[1L]], "", 6L)))
    items <- vapply(seq_len(n), function(i) format_warning(pending[[i]], paste0(i, ": "), 10L), "")
    paste0("Warning messages:\n", paste(items, collapse = ""))
  }

  format_warning <- function(w, prefix, indent) {
    if (is.null(w$call)) return(paste0(prefix, w$message, " \n"))
    dcall <- deparse_call(w$call)
    long <- indent + nchar(dcall, type = "w") + first_line_width(w$message) > LONGWARN
    paste0(prefix, "In ", dcall, " :", if (long) "\n ", " ", w$message, "\n")
  }

  # --- parsing like R's read-eval loop ---

  # The expressions before a syntax error, and the error as the loop words it. The loop
  # parses one expression at a time, so the complete expressions before the bad one run.
  parse_like_repl <- function(text) {
    exprs <- tryCatch(parse(text = text, keep.source = FALSE, srcfile = NULL), error = identity)
    if (!inherits(exprs, "error")) return(list(exprs = exprs, error = NULL))
    message <- sub("\n.*", "", conditionMessage(exprs))
    tryCatch(locate_syntax_error(text, message), error = function(e) {
      list(exprs = expression(), error = message) # e.g. bad escapes carry no position
    })
  }

  locate_syntax_error <- function(text, message) {
    pattern <- "^(?:<text>:)?([0-9]+):([0-9]+): (.*)$"
    where <- regmatches(message, regexec(pattern, message, perl = TRUE))[[1L]]
    if (!length(where)) stop("no position")
    detail <- where[4L]
    at_end <- grepl("INCOMPLETE_STRING|end of input", detail)
    bad <- if (at_end) {
      nchar(text) + 1L
    } else {
      text_offset(text, as.integer(where[2L]), as.integer(where[3L]))
    }
    cut <- complete_prefix(text, bad)
    exprs <- parse(text = substr(text, 1L, cut), keep.source = FALSE, srcfile = NULL)
    if (at_end) return(list(exprs = exprs, error = "unexpected end of input"))
    context <- repl_context(text, cut, bad, token_length(text, bad, detail))
    list(exprs = exprs, error = paste0(detail, context))
  }

  # Character offset of a parser position (line, column counted in bytes with tabs expanded).
  text_offset <- function(text, line, column) {
    lines <- strsplit(text, "\n", fixed = TRUE)[[1L]]
    before <- sum(nchar(lines[seq_len(min(line - 1L, length(lines)))], type = "chars")) + line - 1L
    chars <- strsplit(if (line <= length(lines)) lines[line] else "", "")[[1L]]
    col <- 0L
    for (i in seq_along(chars)) {
      col <- if (chars[i] == "\t") (col %/% 8L + 1L) * 8L else col + nchar(chars[i], type = "bytes")
      if (col >= column) return(before + i)
    }
    before + length(chars) + 1L
  }

  # The longest prefix, ending after a newline or ';' before `bad`, that parses completely.
  complete_prefix <- function(text, bad) {
    chars <- strsplit(substr(text, 1L, bad - 1L), "")[[1L]]
    cuts <- rev(which(chars %in% c("\n", ";")))
    for (cut in cuts) {
      ok <- tryCatch({
        parse(text = substr(text, 1L, cut), keep.source = FALSE, srcfile = NULL)
        TRUE
      }, error = function(e) FALSE)
      if (ok) return(cut)
    }
    0L
  }

  token_length <- function(text, bad, detail) {
    rest <- substr(text, bad, nchar(text))
    literal <- regmatches(detail, regexec("^unexpected '(.*)'$", detail))[[1L]]
    if (length(literal)) return(nchar(gsub("\\\\", "\\", literal[2L], fixed = TRUE)))
    pattern <- switch(sub("^unexpected ", "", detail),
      "symbol" = "^(`[^`]*`|[\\p{L}.][\\p{L}\\p{N}._]*)",
      "numeric constant" = paste0(
        "^(0[xX][0-9a-fA-F.]+([pP][+-]?[0-9]+)?[Li]?",
        "|([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][+-]?[0-9]+)?[Li]?)"
      ),
      "string constant" = "^(\"([^\"\\\\]|\\\\.)*\"|'([^'\\\\]|\\\\.)*')",
      "SPECIAL" = "^%[^%]*%",
      "assignment" = "^(<<-|->>|<-|->|:=)",
      "input" = "^[\\p{L}\\p{N}._]+",
      "^."
    )
    hit <- regmatches(rest, regexpr(pattern, rest, perl = TRUE))
    if (length(hit)) max(nchar(hit), 1L) else 1L
  }

  # ` in "<text>"`: the failing expression's text up to the end of the bad token, its last two
  # lines, starting where the expression's first line starts (or just after a ';').
  repl_context <- function(text, cut, bad, length) {
    chars <- strsplit(text, "")[[1L]]
    start <- cut + 1L
    first <- first_token(chars, start)
    if (any(chars[seq.int(start, length.out = max(first - start, 0L))] == "\n")) {
      start <- first
      while (start > 1L && chars[start - 1L] != "\n") start <- start - 1L
    }
    context <- substr(text, start, bad + length - 1L)
    lines <- vapply(strsplit(context, "\n", fixed = TRUE)[[1L]], expand_tabs, "", USE.NAMES = FALSE)
    lines <- utils::tail(lines, 2L)
    if (length(lines) == 1L) return(sprintf(" in \"%s\"", lines))
    sprintf(" in:\n\"%s\n%s\"", lines[1L], lines[2L])
  }

  first_token <- function(chars, start) {
    i <- start
    n <- length(chars)
    while (i <= n) {
      if (chars[i] == "#") {
        while (i <= n && chars[i] != "\n") i <- i + 1L
      } else if (chars[i] %in% c(" ", "\t", "\n", "\r", "\f")) {
        i <- i + 1L
      } else {
        break
      }
    }
    i
  }

  expand_tabs <- function(line) {
    out <- ""
    for (ch in strsplit(line, "")[[1L]]) {
      pad <- strrep(" ", 8L - nchar(out, type = "bytes") %% 8L)
      out <- paste0(out, if (ch == "\t") pad else ch)
    }
    out
  }

  # --- the server loop ---

  # Waits for the child to finish: its pipe closes when it exits, unless a background
  # process it started holds the pipe open, so a dead (zombie) child also ends the wait.
  # `shown` is the child's pid in /proc (see visible_pid).
  wait_for_child <- function(pid, shown) {
    status <- NO_STATUS
    repeat {
      ready <- parallel:::selectChildren(pid, 0.05)
      if (is.null(ready)) break
      if (is.integer(ready)) {
        data <- parallel:::readChild(pid)
        if (!is.raw(data)) break
        status <- unserialize(data)
      } else if (!process_alive(shown)) {
        parallel:::rmChild(pid)
        break
      }
    }
    parallel:::cleanup(kill = FALSE, detach = FALSE) # forget finished children
    status
  }

  # The runner may start programs in a PID namespace of their own, which /proc (the
  # sandbox's) does not show: the child's pid there is found by its NSpid line (its pid in
  # each namespace, /proc's first, its own last) among this server's children.
  visible_pid <- function(pid) {
    own <- proc_status("self")
    for (path in Sys.glob("/proc/[0-9]*/status")) {
      status <- proc_status(path)
      if (isTRUE(status$parent == own$pids[1L] && status$pids[length(status$pids)] == pid)) {
        return(status$pids[1L])
      }
    }
    pid
  }

  proc_status <- function(path) {
    if (path == "self") path <- "/proc/self/status"
    lines <- tryCatch(readLines(path, warn = FALSE), error = function(e) character())
    field <- function(name) {
      line <- grep(paste0("^", name, ":"), lines, value = TRUE)
      as.integer(strsplit(trimws(sub("^[^:]*:", "", line[1L])), "[[:space:]]+")[[1L]])
    }
    list(pids = field("NSpid"), parent = field("PPid"))
  }

  process_alive <- function(pid) {
    stat <- tryCatch(readLines(sprintf("/proc/%d/stat", pid), warn = FALSE), error = function(e) "")
    fields <- strsplit(sub(".*\\) ", "", stat[1L]), " ", fixed = TRUE)[[1L]]
    length(fields) > 0L && !fields[1L] %in% c("Z", "X")
  }

  reply <- function(...) {
    cat(..., "\n", sep = "")
    flush(stdout())
  }

  run_request <- function(fields, jit_level, stdin_con) {
    child <- parallel:::mcfork()
    if (inherits(child, "masterProcess")) {
      tryCatch(
        child_main(fields[2L], fields[3L], fields[4L], fields[5L], jit_level, stdin_con),
        error = function(e) NULL
      )
      parallel:::mcexit(1L) # only reached if child_main itself failed
    }
    shown <- visible_pid(child$pid)
    reply("STARTED\t", shown)
    reply("DONE\t", wait_for_child(child$pid, shown))
  }

  serve <- function() {
    mimic_rscript_startup()
    compile_functions(environment(serve))
    jit_level <- compiler::enableJIT(-1L)
    unlink(tempdir(), recursive = TRUE) # children make their own under their scratch dir
    stdin_con <- file("stdin", "r")
    reply("READY")
    repeat {
      line <- readLines(stdin_con, n = 1L, warn = FALSE)
      if (!length(line)) break
      fields <- strsplit(line, "\t", fixed = TRUE)[[1L]]
      if (length(fields) == 5L && fields[1L] == "RUN") {
        run_request(fields, jit_level, stdin_con)
      } else {
        reply("ERROR\tbad request")
      }
    }
  }

  serve()
})
quit(save = "no", status = 0)
