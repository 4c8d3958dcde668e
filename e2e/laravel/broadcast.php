<?php

// php e2e/laravel/broadcast.php <scenario> [args]
//
// Broadcasts one scenario through a real Laravel 8 (bootstrap.php) and its
// own RedisBroadcaster: one EVAL that PUBLISHes the payload to each
// prefixed channel. Scenarios:
//
//   tarea-creada [id] [titulo]   (a) the seed's TareaCreada on 'tareas', as tarea.creada
//   multi-channel [pedido]       (b) public + private + presence + encrypted private channels
//   empty-payload                (c) an event whose payload is empty: "data": []
//   to-others <socket_id>        (d) broadcast(...)->toOthers() with an X-Socket-ID header
//   notification [user] [tarea]  (e) TareaAsignada (via broadcast) to App\Models\User {user}
//   notification-socket [user]   (f) a notification whose data holds its own "socket" key
//
// Exit status 0 when Laravel published, 1 with a message otherwise.

declare(strict_types=1);

use App\Events\CacheInvalidada;
use App\Events\MensajeEnviado;
use App\Events\PedidoActualizado;
use App\Events\TareaCreada;
use App\Models\Tarea;
use App\Models\User;
use App\Notifications\RecordatorioConSocket;
use App\Notifications\TareaAsignada;
use Illuminate\Http\Request;

$app = require __DIR__ . '/bootstrap.php';

$scenario = $argv[1] ?? '';
$arg = fn (int $i, string $default): string => $argv[$i] ?? $default;

try {
    switch ($scenario) {
        case 'tarea-creada':
            $tarea = new Tarea(['id' => (int) $arg(2, '7'), 'titulo' => $arg(3, 'Revisar el informe trimestral'), 'user_id' => 42]);
            broadcast(new TareaCreada($tarea));
            break;
        case 'multi-channel':
            broadcast(new PedidoActualizado((int) $arg(2, '1')));
            break;
        case 'empty-payload':
            broadcast(new CacheInvalidada());
            break;
        case 'to-others':
            if (!isset($argv[2])) {
                throw new InvalidArgumentException('to-others needs a socket id, e.g. 1234.5678');
            }
            // The browser's request: Laravel Echo sends its connection's
            // socket id as X-Socket-ID, and toOthers() reads it from there.
            $app->instance('request', Request::create('/mensajes', 'POST', [], [], [], ['HTTP_X_SOCKET_ID' => $argv[2]]));
            broadcast(new MensajeEnviado(3, 'Hola a todos menos a mí'))->toOthers();
            break;
        case 'notification':
            (new User((int) $arg(2, '42')))->notify(new TareaAsignada((int) $arg(3, '7'), 'Revisar el informe trimestral'));
            break;
        case 'notification-socket':
            (new User((int) $arg(2, '42')))->notify(new RecordatorioConSocket());
            break;
        default:
            throw new InvalidArgumentException("unknown scenario '{$scenario}'; see the comment at the top of broadcast.php");
    }
} catch (Throwable $e) {
    fwrite(STDERR, 'broadcast.php: ' . $scenario . ': ' . get_class($e) . ': ' . $e->getMessage() . PHP_EOL);
    exit(1);
}
