#lang racket/base
;; Warm Racket runtime for multiplt's batch runner (the line protocol is documented in runner.py).
;;
;; Racket CS cannot fork, so each program runs in this process, but in state of its own:
;; a fresh namespace (module registry) with `racket` and `rackunit` attached from this one,
;; so they are loaded once per server, not once per program; a fresh thread under a fresh
;; custodian (shut down afterwards: it kills the program's threads, closes its ports and kills
;; its subprocesses) with a memory limit; and fresh parameters: output ports to the given
;; files, the scratch directory, an exit handler that records the exit code, a new random
;; generator, no command-line arguments, a new plumber, and a private copy of the
;; environment variables, so putenv/getenv see and change only the program's own copy.
;;
;; The program is run the way `racket file.rkt` runs it: its configure-runtime submodule,
;; then the module, then its main submodule (not its test submodule). Uncaught errors are
;; printed by the default error display handler and give exit status 1, like racket's.
;;
;; A timeout cannot be enforced from in here (a program may never yield to a thread that
;; could stop it), so the runner kills the whole server then and starts a new one.

(require racket/list
         racket/string
         (only-in racket)
         (only-in rackunit)
         (only-in racket/runtime-config))

(define-namespace-anchor anchor)
(define server-namespace (namespace-anchor->empty-namespace anchor))
;; Module instances every program shares (loaded once, here).
(define shared-modules '(racket rackunit racket/runtime-config))
;; Cold racket dies with "out of memory" (SIGABRT) when it runs out; this mimics it.
(define out-of-memory-status -6)

;; A namespace with its own module registry, sharing only the instances of shared-modules.
(define (fresh-namespace)
  (define ns (parameterize ([current-namespace server-namespace])
               (make-base-empty-namespace)))
  (for ([name (in-list shared-modules)])
    (namespace-attach-module server-namespace name ns))
  ns)

;; The memory rlimit the runner set (address space, or data size for some runtimes), if any:
;; a program may use half of it, so that one that runs out is stopped by its custodian
;; before the whole server runs out.
(define (program-memory-limit)
  (define limits
    (for*/list ([line (in-list (with-handlers ([exn:fail? (λ (e) '())])
                                 (file->lines* "/proc/self/limits")))]
                [name (in-list '("Max address space" "Max data size"))]
                #:when (string-prefix? line name)
                [soft (in-value (string->number (car (string-split (substring line 26)))))]
                #:when soft)
      soft))
  (and (pair? limits) (custodian-memory-accounting-available?) (quotient (apply min limits) 2)))

(define (file->lines* path)
  (call-with-input-file path (λ (in) (for/list ([l (in-lines in)]) l))))

(define memory-limit (program-memory-limit))

;; Racket's exit code for (exit v): v itself if it is an integer in 1..255, else 0.
(define (exit-status v)
  (if (and (exact-integer? v) (<= 1 v 255)) v 0))

(define os-environment (current-environment-variables))

;; Cold racket starts with HOME and TMPDIR in the scratch dir. find-system-path reads them
;; from the process environment, so that is switched (one program runs at a time); the
;; program itself gets a private copy, so its putenv cannot reach the server or the next one.
(define (program-environment scratch)
  (for ([name (in-list '(#"HOME" #"TMPDIR"))])
    (environment-variables-set! os-environment name (string->bytes/locale scratch)))
  (environment-variables-copy os-environment))

;; Error messages as racket prints them, minus the frames of this server in "context...:".
(define server-source
  (let ([source (variable-reference->module-source (#%variable-reference))])
    (if (path? source) (path->string source) (format "~a" source))))
(define default-error-display (error-display-handler))

(define (program-error-display message value)
  (define text (open-output-string))
  (parameterize ([current-error-port text])
    (default-error-display message value))
  (write-string (hide-server-frames (get-output-string text)) (current-error-port)))

(define (hide-server-frames text)
  (define lines (string-split text "\n" #:trim? #f))
  (define kept (filter (λ (l) (not (string-prefix? l (string-append "   " server-source)))) lines))
  (string-join (drop-empty-context kept) "\n"))

;; A "context...:" header whose frames were all the server's goes too.
(define (drop-empty-context lines)
  (cond [(null? lines) lines]
        [(and (equal? (car lines) "  context...:")
              (or (null? (cdr lines)) (not (string-prefix? (cadr lines) "   "))))
         (drop-empty-context (cdr lines))]
        [else (cons (car lines) (drop-empty-context (cdr lines)))]))

;; What `racket file.rkt` does with the file; #f if an uncaught error escaped (after the
;; default handlers printed it and aborted to this prompt).
(define (run-like-racket path)
  (define module `(file ,path))
  (define (submodule name) `(submod ,module ,name))
  (call-with-continuation-prompt
   (λ ()
     (when (module-declared? (submodule 'configure-runtime) #t)
       (dynamic-require (submodule 'configure-runtime) #f))
     (namespace-require module)
     (when (module-declared? (submodule 'main) #t)
       (dynamic-require (submodule 'main) #f))
     #t)
   (default-continuation-prompt-tag)
   (λ _ #f)))

;; Runs one program and returns its exit status.
(define (run-program path scratch stdout-path stderr-path)
  (define out (open-output-file stdout-path #:exists 'append))
  (define err (open-output-file stderr-path #:exists 'append))
  (file-stream-buffer-mode err 'none) ; as racket's own stderr, so a killed program loses none
  (define custodian (make-custodian))
  (when memory-limit
    (custodian-limit-memory custodian memory-limit custodian))
  (define plumber (make-plumber))
  (define exit-code #f)
  (define outcome #f) ; 'ok or 'error once the program's main thread has finished
  (define (exit-handler* v)
    (unless exit-code (set! exit-code (exit-status v)))
    (plumber-flush-all plumber) ; racket's exit flushes ports before it exits
    (custodian-shutdown-all custodian))
  (define environment (program-environment scratch))
  (define main
    (parameterize ([current-custodian custodian]
                   [current-namespace (fresh-namespace)]
                   [current-output-port out]
                   [current-error-port err]
                   [current-input-port (open-input-bytes #"")]
                   [current-directory scratch]
                   [current-directory-for-user scratch]
                   [current-library-collection-links (find-library-collection-links)]
                   [current-library-collection-paths (find-library-collection-paths)]
                   [error-display-handler program-error-display]
                   [current-load-relative-directory #f]
                   [current-command-line-arguments (vector)]
                   [current-pseudo-random-generator (make-pseudo-random-generator)]
                   [current-environment-variables environment]
                   [current-plumber plumber]
                   [current-subprocess-custodian-mode 'kill]
                   [exit-handler exit-handler*])
      (thread (λ ()
                (set! outcome (if (run-like-racket path) 'ok 'error))
                (plumber-flush-all plumber)))))
  (sync (thread-dead-evt main))
  (define status
    (cond [exit-code exit-code]
          [(eq? outcome 'ok) 0]
          [(eq? outcome 'error) 1]
          [(custodian-shut-down? custodian) ; only the memory limit shuts it down unasked
           (with-handlers ([exn:fail? void]) ; the program may have closed it
             (write-string "out of memory\n" err))
           out-of-memory-status]
          [else 0])) ; the program killed its own main thread
  (custodian-shutdown-all custodian)
  (for ([port (list out err)])
    (with-handlers ([exn:fail? void]) ; e.g. the file-size limit
      (flush-output port))
    (close-output-port port))
  status)

(define (reply . parts)
  (write-string (string-join (map ~a* parts) "\t"))
  (newline)
  (flush-output))

(define (~a* v) (if (string? v) v (number->string v)))

(define (serve)
  (reply "READY")
  (let loop ()
    (define line (read-line (current-input-port) 'linefeed))
    (unless (eof-object? line)
      (handle-request (string-split line "\t" #:trim? #f))
      (loop))))

(define (handle-request fields)
  (cond
    [(and (= (length fields) 5) (equal? (first fields) "RUN"))
     (reply "STARTED" 0)
     (reply "DONE" (apply run-program (rest fields)))]
    [else (reply "ERROR" "bad request")]))

(serve)
